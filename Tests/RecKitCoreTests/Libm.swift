#if canImport(Glibc)
import Glibc
#endif
enum Foundationless {
    static func log(_ x: Double) -> Double { Glibc.log(x) }
    static func exp(_ x: Double) -> Double { Glibc.exp(x) }
}
