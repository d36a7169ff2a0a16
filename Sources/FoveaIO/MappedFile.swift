import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A read-only memory map of a whole file. Weights stored as float32 are used in place;
/// the kernel pages them in on first touch and may drop them under memory pressure.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let base: UnsafeMutableRawPointer
    public let size: Int

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        if fd < 0 {
            if errno == ENOENT { throw FoveaError.fileNotFound(path: path) }
            throw FoveaError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw FoveaError.unreadable(path: path, reason: String(cString: strerror(errno))) }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw FoveaError.unreadable(path: path, reason: "is a directory") }
        size = Int(st.st_size)
        if size == 0 {
            base = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64)
            return
        }
        // MAP_PRIVATE + PROT_WRITE so borrowed float pointers can be typed mutable;
        // nothing writes through them, so no page is ever copied.
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw FoveaError.unreadable(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        base = p
    }

    deinit {
        if size == 0 { base.deallocate() } else { munmap(base, size) }
    }
}

/// Whole small files (JSON, images) read into memory, bounded: a file over `limit` bytes is refused
/// before it is read, and an empty one is not handed to Foundation's reader (which leaks its 4 KB
/// buffer on empty files: found by the tokenizer-json fuzzer).
public enum FileReader {
    public static func read(_ path: String, limit: Int, what: String) throws -> Data {
        guard FileManager.default.fileExists(atPath: path) else { throw FoveaError.fileNotFound(path: path) }
        let size: Int
        do { size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0 } catch {
            throw FoveaError.unreadable(path: path, reason: error.localizedDescription)
        }
        guard size <= limit else {
            throw FoveaError.unreadable(path: path, reason: "\(size) bytes is more than a \(what) may be (\(limit) bytes)")
        }
        if size == 0 { return Data() }
        do { return try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw FoveaError.unreadable(path: path, reason: error.localizedDescription)
        }
    }
}
