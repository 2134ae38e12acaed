// Names of small enums for messages and files: one table per enum, indexed by the enumerator's value, so the
// name functions in gate/, host/models/, host/package/ and cuda/ share one lookup instead of a switch each.
// A value outside the table (a corrupt byte cast to the enum) reads "?", as the switches did. Header-only so
// cuda/*.cu can use it; covered by the tests of those name functions (gate, layers, package, cli_).
#pragma once
#include <cstddef>

namespace rf {

// names[e] for enumerators 0..N-1 in declaration order; "?" for any other value.
template <typename E, size_t N>
constexpr const char* enum_name(E e, const char* const (&names)[N]) {
  const auto i = static_cast<size_t>(e);
  return i < N ? names[i] : "?";
}

}  // namespace rf
