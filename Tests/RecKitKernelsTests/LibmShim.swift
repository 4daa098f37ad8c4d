#if canImport(Glibc)
import Glibc
#endif
/// libm exp, named so it cannot clash with Swift overloads in the tests.
func Foundation_exp(_ x: Double) -> Double { exp(x) }
