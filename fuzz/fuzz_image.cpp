// libFuzzer target for the JPEG / PNG decoding wrapper (datasets/image_codec.cpp): any byte string must
// decode or throw rf::Error naming the input, through every entry point: the header reader, the RGB decoder
// (by content), and the exact label-map reader. libjpeg / libpng errors and warnings must come back as
// rf::Error (no exit(), no longjmp past C++ frames, no grey pixels for truncated data), and no allocation may
// exceed the pixel limit (lowered here to 4 Mpx so each run stays fast; the logic is the same at 67 Mpx).
// fuzz-sources: datasets/image_codec.cpp datasets/dataset.cpp host/core/philox.cpp
// fuzz-libs: -fopenmp -ljpeg -lpng -lfmt
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "datasets/image_codec.h"
#include "host/core/check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rf::data::set_max_image_pixels(int64_t(1) << 22);
  int hh = -1, hw = -1;
  try {
    const rf::data::ImageHeader h = rf::data::read_image_header_memory(data, size, "fuzz-input");
    if (h.H <= 0 || h.W <= 0 || int64_t(h.H) * h.W > rf::data::max_image_pixels()) std::abort();
    hh = h.H, hw = h.W;
  } catch (const rf::Error&) {
  }
  try {
    const rf::data::Image img = rf::data::decode_image_memory(data, size, "fuzz-input");
    if (img.C != 3 || img.hwc.size() != size_t(img.H) * size_t(img.W) * 3) std::abort();
    if (img.H != hh || img.W != hw) std::abort();  // the header we checked is the image we decoded
  } catch (const rf::Error&) {
  }
  try {
    const rf::data::Image lab = rf::data::decode_label_png_memory(data, size, "fuzz-input");
    if (lab.C != 1 || lab.hwc.size() != size_t(lab.H) * size_t(lab.W)) std::abort();
    if (lab.H != hh || lab.W != hw) std::abort();
  } catch (const rf::Error&) {
  }
  return 0;
}
