// How the package commands (pack, inspect, run, apply) print numbers and flags. Covered by
// tests/package/cli_package.sh.
#pragma once
#include <cstdint>
#include <string>

namespace rf {

// 1234567 -> "1,234,567".
std::string thousands(uint64_t v);
// 0x-prefixed, 16 hex digits (payload hashes, checksums).
std::string hex64(uint64_t v);
// A package's flag bits by name, "zstd,delta" ("none" for none).
std::string flags_str(uint32_t f);

}  // namespace rf
