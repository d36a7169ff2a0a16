import Foundation
import Testing
@testable import FoveaIO
import FoveaTestSupport

/// Decoded pixels against PIL + transformers' `convert_to_rgb` (Fixtures/images, made by
/// scripts/make_image_fixtures.py). PNG must match exactly; JPEG within 1 level per sample
/// (libjpeg-turbo builds may differ in the last bit of IDCT rounding), and here it matches exactly.
@Suite("Image decoding")
struct ImageDecoderTests {
    static let folder = Fixtures.root() + "/images"
    static let files = ["rgb.png", "grey.png", "grey1bit.png", "rgba.png", "greyalpha.png", "interlaced.png", "palette.png",
                        "rgb16.png", "baseline.jpg", "progressive.jpg", "grey.jpg", "subsampled420.jpg"]

    @Test("pixels equal PIL's after convert_to_rgb", arguments: files)
    func matchesPIL(_ name: String) throws {
        let ref = try SafeTensorsFile(path: Self.folder + "/reference.safetensors")
        let info = try #require(ref.tensors[name])
        let want = try ref.load(name).toArray().map { UInt8($0) }
        let got = try ImageDecoder.decode(path: Self.folder + "/" + name)
        #expect([got.height, got.width, 3] == info.shape)
        let maxDiff = zip(got.pixels, want).map { abs(Int($0) - Int($1)) }.max() ?? 0
        #expect(maxDiff <= (name.hasSuffix(".jpg") ? 1 : 0), "\(name): max difference \(maxDiff)")
    }

    @Test("an image over the pixel limit is refused from its header")
    func bomb() throws {
        let e = #expect(throws: FoveaError.self) { try ImageDecoder.decode(path: Self.folder + "/baseline.jpg", maxPixels: 1000) }
        #expect(e?.localizedDescription.contains("64 = 6144 pixels, over the limit of 1000") == true)
        #expect(throws: FoveaError.self) { try ImageDecoder.decode(path: Self.folder + "/rgb.png", maxPixels: 100) }
    }

    @Test("truncated, corrupt and unknown files give a clear error")
    func corrupt() throws {
        let dir = Fixtures.temporaryDirectory("img")
        for name in ["rgb.png", "baseline.jpg"] {
            let data = try Data(contentsOf: URL(fileURLWithPath: Self.folder + "/" + name))
            let cut = dir + "/cut-" + name
            try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: cut))
            let e = #expect(throws: FoveaError.self) { try ImageDecoder.decode(path: cut) }
            #expect(e?.localizedDescription.contains("corrupt") == true, "\(String(describing: e))")
        }
        let text = dir + "/notes.png"
        try Data("hello".utf8).write(to: URL(fileURLWithPath: text))
        let e = #expect(throws: FoveaError.self) { try ImageDecoder.decode(path: text) }
        #expect(e?.localizedDescription.contains("not a PNG or JPEG") == true)
        #expect(throws: FoveaError.fileNotFound(path: dir + "/missing.jpg")) { try ImageDecoder.decode(path: dir + "/missing.jpg") }
    }
}
