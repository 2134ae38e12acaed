// libFuzzer target for the Pascal VOC annotation parser and split-list parser (datasets/voc.cpp): any byte
// string must parse or throw rf::Error naming the file and field; what parses must hold only plain
// non-negative coordinates with xmin <= xmax and ymin <= ymax, difficult 0/1, and sizes below 1,000,000.
// The same bytes are also read as a split list (ids: no duplicates, nothing escaping the root).
// fuzz-sources: datasets/voc.cpp datasets/dense.cpp datasets/image_codec.cpp datasets/dataset.cpp host/core/philox.cpp
// fuzz-libs: -fopenmp -ltinyxml2 -ljpeg -lpng -lfmt
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

#include "datasets/voc.h"
#include "host/core/check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* text = reinterpret_cast<const char*>(data);
  try {
    const rf::data::VocAnnotation a = rf::data::parse_voc_annotation(text, size, "fuzz.xml");
    if (a.size_w < 0 || a.size_h < 0 || a.size_w >= 1000000 || a.size_h >= 1000000) std::abort();
    for (const auto& o : a.objects) {
      if (o.name.empty()) std::abort();
      for (double c : o.c)
        if (!std::isfinite(c) || c < 0) std::abort();
      if (o.c[0] > o.c[2] || o.c[1] > o.c[3]) std::abort();
    }
  } catch (const rf::Error&) {
  }
  try {
    const std::vector<std::string> ids = rf::data::parse_voc_list(std::string(text, size), "fuzz.txt", "/voc");
    if (ids.empty() || std::set<std::string>(ids.begin(), ids.end()).size() != ids.size()) std::abort();
    for (const auto& id : ids)
      if (id.empty() || id[0] == '/') std::abort();
  } catch (const rf::Error&) {
  }
  return 0;
}
