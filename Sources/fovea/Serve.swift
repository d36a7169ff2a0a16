import ArgumentParser
import Foundation
import FoveaCore
import FoveaIO
import FoveaRuntime
import FoveaServer
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a model over OpenAI's chat-completions API; each request may pick its pruning method and KV policy.",
        discussion: """
        POST /v1/chat/completions (stream or not; images as data: URIs, or file:// URLs under --media-path), \
        GET /v1/models, GET /health, GET /metrics (Prometheus text, vLLM's gauge names). A request's \
        "fovea": {"prune": SPEC, "kv": SPEC, "kv_dtype": T} overrides the server's methods; --alias NAME=CELL \
        makes "model": NAME select a method cell for clients that send only a model name. \
        SIGTERM or SIGINT: stop accepting, let running requests finish (up to --grace seconds), exit 0.
        """)

    @Option(help: "Model folder (config.json + *.safetensors) or a .gguf file (with --mmproj for images).")
    var model: String

    @OptionGroup var weightOptions: WeightOptions

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0: any free port; the chosen one is printed).")
    var port = 8080

    @OptionGroup var pruning: PruningOptions

    @OptionGroup var kv: KVOptions

    @Option(name: .customLong("alias"), help: "NAME=prune=SPEC;kv=SPEC;dtype=T: a model name that selects those methods. Repeatable.")
    var aliases: [String] = []

    @Option(name: .customLong("served-name"), help: "The model name /v1/models lists and requests send (default: the model file's or folder's name).")
    var servedName: String?

    @Option(name: .customLong("media-path"), help: "The folder file:// image URLs may read from (none by default).")
    var mediaPath: String?

    @Option(name: .customLong("max-body"), help: "Largest request body in bytes (413 above it).")
    var maxBody = 32 << 20

    @Option(name: .customLong("max-pixels"), help: "Refuse images with more pixels than this.")
    var maxPixels = ImageDecoder.defaultMaxPixels

    @Option(name: .customLong("max-tokens"), help: "Tokens an answer may have when the request sets no max_tokens.")
    var maxTokens = 1024

    @Option(name: .customLong("vision-cache"), help: "Bytes of encoded images kept for follow-up questions (0: off).")
    var visionCacheBytes = 256 << 20

    @Option(name: .customLong("api-key"), help: "Require 'Authorization: Bearer KEY' on /v1 routes (or set FOVEA_API_KEY).")
    var apiKey: String?

    @Option(help: "Seconds running requests may take to finish after SIGTERM/SIGINT.")
    var grace = 30

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0…65535") }
        guard maxBody > 0 else { throw ValidationError("--max-body must be positive") }
        guard maxPixels > 0 else { throw ValidationError("--max-pixels must be positive") }
        guard maxTokens > 0 else { throw ValidationError("--max-tokens must be positive") }
        guard visionCacheBytes >= 0 else { throw ValidationError("--vision-cache must be ≥ 0") }
        guard grace >= 0 else { throw ValidationError("--grace must be ≥ 0") }
    }

    func run() async throws {
        let loaded = try loadWithProgress(model, weights: weightOptions)
        announceTemplate(loaded)
        let name = servedName ?? ((model as NSString).lastPathComponent as NSString).deletingPathExtension
        let defaults = MethodChoice(prune: pruning.spec, kv: kv.spec, kvDtype: kv.dtype)
        var aliasTable: [String: MethodChoice] = [:]
        for a in aliases {
            guard let eq = a.firstIndex(of: "="), a.startIndex != eq else {
                throw ValidationError("--alias '\(a)': expected NAME=prune=SPEC;kv=SPEC;dtype=T")
            }
            let aliasName = String(a[..<eq])
            guard aliasName != name, aliasTable[aliasName] == nil else { throw ValidationError("--alias: '\(aliasName)' is given twice") }
            aliasTable[aliasName] = try MethodChoice(alias: String(a[a.index(after: eq)...]), over: defaults)
        }
        let planner = try RequestPlanner(loaded: loaded, modelName: name, defaults: defaults, aliases: aliasTable,
                                         media: try MediaLoader(mediaPath: mediaPath), defaultMaxTokens: maxTokens)

        // swift-metrics into a Prometheus registry, with latency buckets fit for CPU inference.
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        let seconds = { (b: [Double]) in b.map { Duration.nanoseconds(Int64($0 * 1e9)) } }
        factory.durationHistogramBuckets = [
            "vllm:time_to_first_token_seconds": seconds(ServerMetrics.latencyBuckets),
            "vllm:e2e_request_latency_seconds": seconds(ServerMetrics.latencyBuckets),
            "vllm:inter_token_latency_seconds": seconds(ServerMetrics.tokenLatencyBuckets),
        ]
        MetricsSystem.bootstrap(factory)
        // The KV a full-context sequence needs: what one running request can hold at most.
        let kvCapacity = MemoryBudget.kvBytes(loaded.model.config, tokens: loaded.model.config.text.maxPositions,
                                              storage: try kv.plan.storage)
        let metrics = ServerMetrics(kvCapacityBytes: kvCapacity)
        let worker = InferenceWorker(loaded: loaded, visionCacheBytes: visionCacheBytes, maxPixels: maxPixels, metrics: metrics)
        let key = apiKey ?? ProcessInfo.processInfo.environment["FOVEA_API_KEY"]
        let server = FoveaServer(planner: planner, worker: worker, maxBodyBytes: maxBody, apiKey: key,
                                 renderMetrics: { registry.emitToString() })

        var logger = Logger(label: "fovea.serve")
        logger.logLevel = .warning
        let app = Application(
            router: server.router(),
            configuration: .init(address: .hostname(host, port: port), serverName: "fovea"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? port
                FileHandle.standardError.write(Data("fovea serve: \(name) on http://\(host):\(bound) (methods: \(defaults.label))\n".utf8))
            },
            logger: logger)
        var config = ServiceGroupConfiguration(services: [.init(service: app)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        config.maximumGracefulShutdownDuration = .seconds(grace)
        try await ServiceGroup(configuration: config).run()
        worker.stop()
        note("fovea serve: stopped")
    }
}
