import Testing
@testable import FoveaRuntime

@Suite("Chat templates")
struct ChatTemplateTests {
    let turns = [ChatMessage(.user, "What is shown?"), ChatMessage(.assistant, "A cat."), ChatMessage(.user, "What colour?")]

    @Test("Vicuna (LLaVA-1.5), multi-turn, image in the first user turn")
    func vicuna() {
        #expect(ChatTemplate.vicuna.render(turns, images: 1)
            == "USER: <image>\nWhat is shown? ASSISTANT: A cat.</s>USER: What colour? ASSISTANT:")
    }

    @Test("Mistral (LLaVA-NeXT)")
    func mistral() {
        #expect(ChatTemplate.mistral.render(turns, images: 1)
            == "[INST] <image>\nWhat is shown? [/INST] A cat.</s>[INST] What colour? [/INST]")
    }

    @Test("ChatML with the default system turn only when none is given")
    func chatml() {
        let t = ChatTemplate.chatml(defaultSystem: "Be brief.")
        #expect(t.render([ChatMessage(.user, "Hi")])
            == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        #expect(t.render([ChatMessage(.system, "S"), ChatMessage(.user, "Hi")])
            == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    }

    @Test("detection from the checkpoint's template text")
    func detect() {
        let smol = "{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are SmolLM<|im_end|>\n' }}{% endif %}"
        #expect(ChatTemplate.detect(jinja: smol, modelType: "llama") == .chatml(defaultSystem: "You are SmolLM"))
        #expect(ChatTemplate.detect(jinja: "{{ '[INST] ' + m + ' [/INST]' }}", modelType: "llama") == .mistral)
        #expect(ChatTemplate.detect(jinja: nil, modelType: "mistral") == .mistral)
        #expect(ChatTemplate.detect(jinja: nil, modelType: "llama") == .vicuna)
    }
}
