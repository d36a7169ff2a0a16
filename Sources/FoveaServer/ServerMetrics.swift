import CoreMetrics
import Foundation
import FoveaRuntime
import Metrics

/// The server's metrics through swift-metrics (the process bootstraps the backend; `fovea serve`
/// uses swift-prometheus). The Model Server Protocol's gauges and counters carry vLLM's names, so
/// the Gateway API Inference Extension's endpoint picker (llm-d, KServe) and vLLM dashboards read
/// a Fovea replica as they read a vLLM one; Fovea's own are prefixed `fovea_`.
public final class ServerMetrics: Sendable {
    /// Every metric name this server exports (the deployment test checks the manifests against it).
    public static let names = [
        "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
        "vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:request_success_total",
        "vllm:time_to_first_token_seconds", "vllm:inter_token_latency_seconds", "vllm:e2e_request_latency_seconds",
        "fovea_visual_tokens_in_total", "fovea_visual_tokens_kept_total", "fovea_vision_cache_hits_total",
        "fovea_vision_cache_misses_total", "fovea_kv_pool_bytes_held", "fovea_kv_pool_bytes_in_use",
        "fovea_kv_prefix_bytes_retained", "fovea_prompt_tokens_reused_total",
    ]

    /// Seconds buckets for the latency histograms: CPU prefill of an image request takes seconds.
    public static let latencyBuckets: [Double] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160]
    public static let tokenLatencyBuckets: [Double] = [0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2.5]

    private let running = Gauge(label: "vllm:num_requests_running")
    private let waitingGauge = Gauge(label: "vllm:num_requests_waiting")
    private let kvUsage = Gauge(label: "vllm:kv_cache_usage_perc")
    private let promptTokens = Counter(label: "vllm:prompt_tokens_total")
    private let generationTokens = Counter(label: "vllm:generation_tokens_total")
    private let success = Counter(label: "vllm:request_success_total")
    private let ttft = Timer(label: "vllm:time_to_first_token_seconds")
    private let itl = Timer(label: "vllm:inter_token_latency_seconds")
    private let e2e = Timer(label: "vllm:e2e_request_latency_seconds")
    private let visualIn = Counter(label: "fovea_visual_tokens_in_total")
    private let visualKept = Counter(label: "fovea_visual_tokens_kept_total")
    private let cacheHits = Counter(label: "fovea_vision_cache_hits_total")
    private let cacheMisses = Counter(label: "fovea_vision_cache_misses_total")
    private let poolHeld = Gauge(label: "fovea_kv_pool_bytes_held")
    private let poolInUse = Gauge(label: "fovea_kv_pool_bytes_in_use")
    private let prefixRetained = Gauge(label: "fovea_kv_prefix_bytes_retained")
    private let promptReused = Counter(label: "fovea_prompt_tokens_reused_total")
    /// KV bytes that count as a full cache: `kv_cache_usage_perc` is bytes in use over this.
    private let kvCapacityBytes: Int

    public init(kvCapacityBytes: Int) {
        self.kvCapacityBytes = max(1, kvCapacityBytes)
        for g in [running, waitingGauge, kvUsage, poolHeld, poolInUse, prefixRetained] { g.record(0) }
        for c in [promptTokens, generationTokens, success, visualIn, visualKept, cacheHits, cacheMisses, promptReused] { c.increment(by: 0) }
    }

    func running(_ n: Int) { running.record(n) }
    func waiting(_ n: Int) { waitingGauge.record(n) }

    /// `inUse`: blocks running requests hold; `retained`: blocks kept between requests for the
    /// next one's prefix (free to take, as vLLM counts its cached prefix blocks).
    func kvPool(held: Int, inUse: Int, retained: Int) {
        poolHeld.record(held)
        poolInUse.record(inUse)
        prefixRetained.record(retained)
        kvUsage.record(Double(inUse) / Double(kvCapacityBytes))
    }

    func visionCache(hit: Bool) { (hit ? cacheHits : cacheMisses).increment() }
    func firstToken(seconds: Double) { ttft.recordSeconds(seconds) }
    func interToken(seconds: Double) { itl.recordSeconds(seconds) }

    /// A request's counts; `success` false for one cut off because its client went away.
    func completed(_ s: RunStatistics, completionTokens: Int, success: Bool) {
        promptTokens.increment(by: s.promptTokens)
        promptReused.increment(by: s.promptTokensReused)
        generationTokens.increment(by: completionTokens)
        visualIn.increment(by: s.visualTokensIn)
        visualKept.increment(by: s.visualTokensOut)
        guard success else { return }
        self.success.increment()
        e2e.recordSeconds(s.timeToFirstToken + s.decodeSeconds)
    }
}
