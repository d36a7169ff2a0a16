import Foundation

/// A line chart as a standalone SVG file: one polyline with markers per series, optional
/// vertical interval bars, axes with rounded ticks, a legend. Written by hand: no Swift plotting
/// package is in reach, and the report needs only this.
public struct SVGPlot {
    public struct Series {
        public var name: String
        public var points: [(x: Double, y: Double)]
        /// A y interval per point (e.g. a 95% confidence interval), drawn as a bar; empty for none.
        public var intervals: [ClosedRange<Double>]
        public init(name: String, points: [(x: Double, y: Double)], intervals: [ClosedRange<Double>] = []) {
            self.name = name; self.points = points; self.intervals = intervals.count == points.count ? intervals : []
        }

        /// The drawable points with their intervals, in x order.
        func drawable(logX: Bool) -> [(x: Double, y: Double, interval: ClosedRange<Double>?)] {
            points.indices.compactMap { i -> (x: Double, y: Double, interval: ClosedRange<Double>?)? in
                let p = points[i]
                guard p.x.isFinite, p.y.isFinite, !logX || p.x > 0 else { return nil }
                let iv = intervals.isEmpty ? nil : intervals[i]
                return (p.x, p.y, iv.flatMap { $0.lowerBound.isFinite && $0.upperBound.isFinite ? $0 : nil })
            }.sorted { $0.x < $1.x }
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    public var logX = false

    public init(title: String, xLabel: String, yLabel: String, series: [Series], logX: Bool = false) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.series = series; self.logX = logX
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22",
                          "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363"]

    /// Evenly spaced round tick values covering lo…hi.
    static func ticks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
        guard hi > lo else { return [lo] }
        let raw = (hi - lo) / Double(count)
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? raw
        var out: [Double] = []
        var v = ceil(lo / step) * step
        while v <= hi + step * 1e-9 { out.append(v); v += step }
        return out
    }

    static func label(_ v: Double) -> String {
        if v == 0 { return "0" }
        if abs(v) >= 1e6 { return String(format: "%.0fM", v / 1e6) }
        if abs(v) >= 1e3 { return String(format: "%.0fk", v / 1e3) }
        return abs(v) < 1 ? String(format: "%.2f", v) : String(format: "%g", v)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    public func render(width: Double = 820, height: Double = 460) -> String {
        let left = 70.0, right = 290.0, top = 40.0, bottom = 55.0
        let pw = width - left - right, ph = height - top - bottom
        let all = series.flatMap { $0.drawable(logX: logX) }
        let tx: (Double) -> Double = { logX ? log10($0) : $0 }
        var x0 = all.map { tx($0.x) }.min() ?? 0, x1 = all.map { tx($0.x) }.max() ?? 1
        var y0 = all.map { min($0.y, $0.interval?.lowerBound ?? $0.y) }.min() ?? 0
        var y1 = all.map { max($0.y, $0.interval?.upperBound ?? $0.y) }.max() ?? 1
        if x1 - x0 < 1e-12 { x0 -= 0.5; x1 += 0.5 }
        if y1 - y0 < 1e-12 { y0 -= 0.05; y1 += 0.05 }
        let padX = (x1 - x0) * 0.05, padY = (y1 - y0) * 0.08
        x0 -= padX; x1 += padX; y0 -= padY; y1 += padY
        let sx = { (x: Double) in left + (tx(x) - x0) / (x1 - x0) * pw }
        let sy = { (y: Double) in top + (1 - (y - y0) / (y1 - y0)) * ph }
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(left + pw / 2)" y="22" text-anchor="middle" font-size="15">\(Self.escape(title))</text>
        <rect x="\(left)" y="\(top)" width="\(pw)" height="\(ph)" fill="none" stroke="#333"/>

        """
        // Log axes tick at 1, 2 and 5 of each decade.
        let xTicks = logX ? (Int(floor(x0))...Int(ceil(x1))).flatMap { e in [1.0, 2, 5].map { $0 * pow(10, Double(e)) } }
                              .filter { tx($0) >= x0 && tx($0) <= x1 }
                          : Self.ticks(x0, x1).filter { $0 >= x0 && $0 <= x1 }
        for t in xTicks {
            let x = sx(t)
            svg += "<line x1=\"\(x)\" y1=\"\(top)\" x2=\"\(x)\" y2=\"\(top + ph)\" stroke=\"#ddd\"/>"
            svg += "<text x=\"\(x)\" y=\"\(top + ph + 16)\" text-anchor=\"middle\">\(Self.label(t))</text>\n"
        }
        for t in Self.ticks(y0, y1).filter({ $0 >= y0 && $0 <= y1 }) {
            let y = sy(t)
            svg += "<line x1=\"\(left)\" y1=\"\(y)\" x2=\"\(left + pw)\" y2=\"\(y)\" stroke=\"#ddd\"/>"
            svg += "<text x=\"\(left - 6)\" y=\"\(y + 4)\" text-anchor=\"end\">\(Self.label(t))</text>\n"
        }
        svg += "<text x=\"\(left + pw / 2)\" y=\"\(height - 12)\" text-anchor=\"middle\">\(Self.escape(xLabel))</text>\n"
        svg += "<text transform=\"translate(18 \(top + ph / 2)) rotate(-90)\" text-anchor=\"middle\">\(Self.escape(yLabel))</text>\n"
        for (i, s) in series.enumerated() {
            let colour = Self.palette[i % Self.palette.count]
            let pts = s.drawable(logX: logX)
            for p in pts {
                guard let iv = p.interval else { continue }
                let x = sx(p.x), ya = sy(iv.lowerBound), yb = sy(iv.upperBound)
                svg += String(format: "<path d=\"M%.1f,%.1fV%.1fM%.1f,%.1fh8M%.1f,%.1fh8\" stroke=\"%@\" stroke-opacity=\"0.55\" fill=\"none\"/>",
                              x, ya, yb, x - 4, ya, x - 4, yb, colour)
            }
            if pts.count > 1 {
                let path = pts.map { String(format: "%.1f,%.1f", sx($0.x), sy($0.y)) }.joined(separator: " ")
                svg += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.8\"/>\n"
            }
            for p in pts { svg += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%@\"/>", sx(p.x), sy(p.y), colour) }
            let ly = top + 14 + Double(i) * 18
            svg += "\n<rect x=\"\(left + pw + 14)\" y=\"\(ly - 9)\" width=\"12\" height=\"12\" fill=\"\(colour)\"/>"
            let name = s.name.count > 40 ? String(s.name.prefix(39)) + "…" : s.name
            svg += "<text x=\"\(left + pw + 32)\" y=\"\(ly + 1)\">\(Self.escape(name))</text>\n"
        }
        return svg + "</svg>\n"
    }
}
