// How the package commands print numbers and flags (see package_print.h).
#include "app/package_print.h"

#include <fmt/format.h>

#include "host/package/model_package.h"

namespace rf {

std::string thousands(uint64_t v) {
  std::string s = std::to_string(v), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

std::string hex64(uint64_t v) { return fmt::format("0x{:016x}", v); }

std::string flags_str(uint32_t f) {
  std::string s;
  auto add = [&](uint32_t bit, const char* name) {
    if (f & bit) s += (s.empty() ? "" : ",") + std::string(name);
  };
  add(kPkgZstd, "zstd");
  add(kPkgDelta, "delta");
  add(kPkgBnFolded, "bn_folded");
  add(kPkgMaterialized, "materialized");
  return s.empty() ? "none" : s;
}

Package read_full(const std::string& path, const std::string& base, uint64_t* sent) {
  Package p = read_package(path);
  *sent = p.file_bytes;
  if (base.empty()) return p;
  Package b = read_package(base);
  return apply_delta(b, p, base, path);
}

}  // namespace rf
