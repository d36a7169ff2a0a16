import Foundation
import FoveaIO

/// Turns a message's `image_url` into image bytes: a `data:` URI with base64, or a `file://`
/// URL inside `--media-path`. Remote URLs are refused: a server on a CPU box may have no network,
/// and fetching whatever a client names is not a server's place.
public struct MediaLoader: Sendable {
    /// The only folder `file://` URLs may read from, resolved (symlinks followed); nil: none.
    public let root: String?
    /// Largest image file accepted, in bytes (also bounds a data URI's decoded size).
    public let maxBytes: Int

    public init(mediaPath: String?, maxBytes: Int = 32 << 20) throws {
        if let mediaPath {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: mediaPath, isDirectory: &isDir), isDir.boolValue else {
                throw FoveaError.invalidArgument(name: "--media-path", value: mediaPath, reason: "not a folder")
            }
            root = URL(fileURLWithPath: mediaPath).resolvingSymlinksInPath().standardizedFileURL.path
        } else {
            root = nil
        }
        self.maxBytes = maxBytes
    }

    /// The image file's bytes and a name for messages.
    public func load(_ url: String, param: String) throws -> (bytes: Data, name: String) {
        if url.hasPrefix("data:") { return (try decodeDataURI(url, param: param), "data URI") }
        if url.hasPrefix("file://") { return (try readFile(url, param: param), url) }
        if url.hasPrefix("http://") || url.hasPrefix("https://") {
            throw APIError.badRequest("remote image URLs are not fetched; send the image as a data: URI (base64) or a file:// URL under the server's --media-path",
                                      param: param, code: "unsupported_image_url")
        }
        throw APIError.badRequest("image_url must be a data: URI or a file:// URL", param: param, code: "invalid_image_url")
    }

    func decodeDataURI(_ url: String, param: String) throws -> Data {
        guard let comma = url.firstIndex(of: ",") else {
            throw APIError.badRequest("data URI without a ',' before its data", param: param, code: "invalid_image_url")
        }
        let header = url[url.index(url.startIndex, offsetBy: 5)..<comma]
        guard header.split(separator: ";").contains("base64") else {
            throw APIError.badRequest("data URI is not base64 (expected data:image/png;base64,...)", param: param, code: "invalid_image_url")
        }
        let payload = url[url.index(after: comma)...]
        // Base64 is 4 characters for 3 bytes: refuse before decoding what would be too large.
        guard payload.utf8.count / 4 * 3 <= maxBytes + 3 else {
            throw APIError(status: 413, "image of about \(payload.utf8.count / 4 * 3) bytes exceeds the server's limit of \(maxBytes)",
                           param: param, code: "image_too_large")
        }
        guard let data = Data(base64Encoded: String(payload), options: .ignoreUnknownCharacters), !data.isEmpty else {
            throw APIError.badRequest("data URI's base64 does not decode", param: param, code: "invalid_image_url")
        }
        return data
    }

    func readFile(_ url: String, param: String) throws -> Data {
        guard let root else {
            throw APIError.badRequest("file:// image URLs need the server started with --media-path", param: param, code: "invalid_image_url")
        }
        guard let parsed = URL(string: url), parsed.isFileURL, parsed.host == nil || parsed.host == "" || parsed.host == "localhost" else {
            throw APIError.badRequest("malformed file:// URL", param: param, code: "invalid_image_url")
        }
        // Resolve symlinks before comparing, so a link inside the folder cannot point outside it.
        let resolved = parsed.resolvingSymlinksInPath().standardizedFileURL.path
        guard resolved.hasPrefix(root.hasSuffix("/") ? root : root + "/") else {
            throw APIError(status: 403, "file:// URL outside the server's --media-path", param: param, code: "forbidden_path")
        }
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: resolved),
              attributes[.type] as? FileAttributeType == .typeRegular else {
            throw APIError(status: 404, "no such image file under --media-path", param: param, code: "image_not_found")
        }
        if let size = attributes[.size] as? Int, size > maxBytes {
            throw APIError(status: 413, "image file of \(size) bytes exceeds the server's limit of \(maxBytes)", param: param, code: "image_too_large")
        }
        guard let data = FileManager.default.contents(atPath: resolved) else {
            throw APIError(status: 404, "cannot read the image file", param: param, code: "image_not_found")
        }
        return data
    }
}
