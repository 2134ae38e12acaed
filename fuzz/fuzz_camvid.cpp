// libFuzzer target for the CamVid list parser and label-map reader (datasets/camvid.cpp): the input is a
// list file's text, then (after the first NUL byte, if any) the bytes of a label PNG. The list must parse or
// throw rf::Error; parsed pairs must be distinct and stay inside the root. The label map must read exactly
// (values 0..10 or void 11, one byte per pixel) or throw rf::Error naming it.
// fuzz-sources: datasets/camvid.cpp datasets/dense.cpp datasets/image_codec.cpp datasets/dataset.cpp host/core/philox.cpp
// fuzz-libs: -fopenmp -ljpeg -lpng -lfmt
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

#include "datasets/camvid.h"
#include "host/core/check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rf::data::set_max_image_pixels(int64_t(1) << 22);
  const uint8_t* nul = static_cast<const uint8_t*>(std::memchr(data, 0, size));
  const size_t text_len = nul ? size_t(nul - data) : size;
  try {
    const auto pairs = rf::data::parse_camvid_list(std::string(reinterpret_cast<const char*>(data), text_len),
                                                   "fuzz.txt", "/camvid");
    std::set<std::string> images, labels;
    for (const auto& p : pairs) {
      if (p.image.rfind("/camvid/", 0) != 0 || p.label.rfind("/camvid/", 0) != 0) std::abort();
      if (!images.insert(p.image).second || !labels.insert(p.label).second) std::abort();
    }
  } catch (const rf::Error&) {
  }
  if (!nul) return 0;
  try {
    int H = 0, W = 0;
    const auto L = rf::data::read_camvid_label(nul + 1, size - text_len - 1, "fuzz.png", 11, 11, &H, &W);
    if (H <= 0 || W <= 0 || L.size() != size_t(H) * size_t(W)) std::abort();
    for (uint8_t v : L)
      if (v > 11) std::abort();
  } catch (const rf::Error&) {
  }
  return 0;
}
