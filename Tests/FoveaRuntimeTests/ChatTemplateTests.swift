import Foundation
import Testing
import FoveaTestSupport
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

    @Test("an unrecognised template is reported as a guess, a recognised one is not")
    func guessed() {
        #expect(ChatTemplate.detection(jinja: "{{ messages[0]['content'] }}", modelType: "llama") == (.vicuna, true))
        #expect(ChatTemplate.detection(jinja: nil, modelType: "mistral") == (.mistral, true))
        #expect(ChatTemplate.detection(jinja: "USER: {{ x }} ASSISTANT:", modelType: "llama") == (.vicuna, false))
    }

    /// transformers' apply_chat_template on the shipped templates, both message forms
    /// (scripts/make_chat_template_reference.py → Fixtures/chat_templates.json).
    @Test("the shipped templates render both message forms as transformers does")
    func bothForms() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.root() + "/chat_templates.json"))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let conversations = try #require(json["conversations"] as? [String: [[String: Any]]])
        let folder = URL(fileURLWithPath: Fixtures.root()).deletingLastPathComponent().appendingPathComponent("models/fovea-test-llava").path
        let shipped = ChatTemplate.detect(jinja: try String(contentsOfFile: folder + "/chat_template.jinja", encoding: .utf8), modelType: "llama")
        let templates: [String: ChatTemplate] = [
            "fovea-test-llava": shipped,
            "fovea-dino-smol": .chatml(defaultSystem: "You are a helpful AI assistant named SmolLM, trained by Hugging Face"),
        ]
        for (model, template) in templates {
            let expected = try #require(json[model] as? [String: String])
            for (name, turns) in conversations {
                let messages = try turns.map { turn -> ChatMessage in
                    let role = try #require(ChatMessage.Role(rawValue: turn["role"] as? String ?? ""))
                    if let text = turn["content"] as? String { return ChatMessage(role, text) }
                    let parts = try #require(turn["content"] as? [[String: Any]]).map { p -> ChatMessage.Part in
                        p["type"] as? String == "image" ? .image : .text(p["text"] as? String ?? "")
                    }
                    return ChatMessage(role, parts: parts)
                }
                #expect(template.render(messages) == expected[name], "\(model): \(name)")
            }
        }
    }
}
