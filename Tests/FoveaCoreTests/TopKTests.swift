import Testing
@testable import FoveaCore

@Suite("Top-k")
struct TopKTests {
    @Test("larger first, ties to the lower index, NaN last")
    func order() {
        #expect(TopK.indices([1, 3, 3, 2, .nan, 3], k: 4) == [1, 2, 5, 3])
        #expect(TopK.indices([.nan, 0, -1], k: 3) == [1, 2, 0])
        #expect(TopK.keptAscending([5, 1, 4, 4], k: 2) == [0, 2])
        #expect(TopK.indices([1, 2], k: 5) == [1, 0])
        #expect(TopK.indices([1, 2], k: -1) == [])
    }
}
