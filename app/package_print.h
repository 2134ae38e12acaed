// How the package commands (pack, inspect, run, apply, export) print numbers and flags, and how run and export
// read the package they work on. Covered by tests/package/cli_package.sh and tests/export/cli_export.sh.
#pragma once
#include <cstdint>
#include <string>

#include "host/package/package.h"

namespace rf {

// 1234567 -> "1,234,567".
std::string thousands(uint64_t v);
// 0x-prefixed, 16 hex digits (payload hashes, checksums).
std::string hex64(uint64_t v);
// A package's flag bits by name, "zstd,delta" ("none" for none).
std::string flags_str(uint32_t f);

// The package a device command (run, export) works on: a full package, or a delta rebuilt on its base (base
// non-empty), read and verified. *sent: the bytes of PATH.
Package read_full(const std::string& path, const std::string& base, uint64_t* sent);

}  // namespace rf
