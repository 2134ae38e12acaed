// libFuzzer target for the model config text parser (host/models/config.cpp): any text must parse or throw
// rf::Error, never crash, overflow or hang; what parses must round-trip (parse(str()) == itself, seeds equal)
// and pass validate(); error messages must be printable (no control bytes reach a terminal).
// fuzz-sources: host/models/config.cpp
// fuzz-libs: -lfmt
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "host/core/check.h"
#include "host/models/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;  // packages cap the config text at 4096 bytes
  const std::string text(reinterpret_cast<const char*>(data), size);
  rf::ModelConfig c;
  try {
    c = rf::ModelConfig::parse(text);
  } catch (const rf::Error& e) {
    for (const char* p = e.what(); *p; ++p)
      if (static_cast<unsigned char>(*p) < 0x20) std::abort();  // a raw control byte in a message
    return 0;
  }
  c.validate();
  const std::string canon = c.str();
  const rf::ModelConfig back = rf::ModelConfig::parse(canon);  // must not throw
  // The NL seed only exists for nl-resnet18 (resnet18's text form has none: it has no seeded weights).
  if (!(back == c) || (c.is_nl() && back.seed != c.seed) || back.init_seed != c.init_seed || back.str() != canon)
    std::abort();
  (void)c.name();
  for (int i = 0; i < 20; ++i) (void)c.module_seed(i);
  return 0;
}
