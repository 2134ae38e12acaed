// libFuzzer target for the .rfpk reader: any byte string must either parse or throw rf::Error, never crash,
// hang, overflow or allocate an attacker-chosen size (ASan/UBSan report those). Built by scripts/fuzz.sh with
// -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, which skips the two hash comparisons so mutations reach the parser.
// What a parsed package goes through next is exercised too: the config parser, tensor decoding (fp16 / int8
// scales), the byte breakdown, and a re-serialisation that must parse back to the same payload hash.
// Seeds: small packages written by `reframe pack` (scripts/fuzz.sh makes them).
// fuzz-sources: host/package/package.cpp host/package/xxhash64.cpp host/models/config.cpp
// fuzz-libs: -lfmt -lzstd
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "host/models/config.h"
#include "host/package/package.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rf::Package p;
  try {
    p = rf::parse_package(data, size, "fuzz-input");
  } catch (const rf::Error&) {
    return 0;
  }
  try {
    (void)rf::ModelConfig::parse(p.config);
  } catch (const rf::Error&) {
  }
  for (const rf::PackedTensor& t : p.tensors) {
    if (t.from_base) continue;
    try {
      (void)rf::decode_tensor(t, "fuzz-input");
    } catch (const rf::Error&) {
    }
  }
  (void)rf::package_breakdown(p);
  // Whatever parsed must serialise and parse back to the same content.
  rf::Package q = p;
  std::vector<uint8_t> bytes = rf::serialize_package(q, 0);
  rf::Package r = rf::parse_package(bytes.data(), bytes.size(), "fuzz-reserialised");
  if (r.payload_hash != q.payload_hash || r.tensors.size() != p.tensors.size()) std::abort();
  return 0;
}
