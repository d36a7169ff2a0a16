import Foundation
import FoveaKV
import FoveaModels
import FoveaPruning

extension LoadedModel {
    /// A request for a conversation: rendered with `template` (the checkpoint's by default),
    /// tokenized with the checkpoint's tokenizer, ending at its stop tokens. The one place the
    /// CLI's `chat`, the server and a Swift app turn messages into a session's input.
    public func request(_ messages: [ChatMessage], images: [ImageInput] = [], template: ChatTemplate? = nil,
                        maxNewTokens: Int = 256, sampling: SamplingParameters = .greedy,
                        pruning: PruningPlan = .full, kv: KVPlan = .full) throws -> GenerationRequest {
        let tokens = try requireTokenizer().encodeChecked((template ?? self.template).render(messages))
        return GenerationRequest(tokens: tokens, images: images, maxNewTokens: maxNewTokens, sampling: sampling,
                                 stopTokens: Set(model.config.text.eosTokenIds), pruning: pruning, kv: kv)
    }
}
