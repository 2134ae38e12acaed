// JPEG and PNG codecs: decoded with libjpeg-turbo and libpng; grayscale, grey+alpha and RGBA become RGB (alpha
// dropped), 16-bit PNGs are reduced to 8 bits. A bad JPEG or PNG throws rf::Error naming the file (libjpeg's and
// libpng's fatal errors are turned into exceptions with setjmp/longjmp; nothing calls exit(); libjpeg's warnings,
// e.g. "premature end of data", are errors too).
// Pixel limit: the header (PNG IHDR, JPEG SOF) is read first and an image declaring more than
// max_image_pixels() pixels (default 8192x8192 = 67,108,864; `reframe --max-image-pixels N` raises it) is
// refused before anything is allocated for it, naming the file and the declared size. Running out of memory
// while decoding is an rf::Error naming the file and the size, never a bare std::bad_alloc.
// Label maps (decode_label_png_*): read exactly as stored, never converted: 8-bit (or 1/2/4-bit) grayscale
// values, palette indices (not the palette's colours), or 8-bit RGB whose three channels agree everywhere;
// 16-bit and alpha PNGs are refused, naming the file.
// Checked by tests/datasets/test_image_folder.cpp (PNG exact round trip, JPEG within a tolerance, grayscale/RGBA
// conversion, corrupted files, resize, pixel limit, label maps) and fuzz/fuzz_image.cpp.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace rf::data {

// One decoded image, interleaved HWC, C = channels as stored after conversion (always 3 from decode_*).
struct Image {
  int H = 0, W = 0, C = 0;
  std::vector<uint8_t> hwc;
};

// Pixel limit for every decoder (header checked first). n <= 0 restores the default.
constexpr int64_t kDefaultMaxImagePixels = int64_t(8192) * 8192;
void set_max_image_pixels(int64_t n);
int64_t max_image_pixels();

Image decode_jpeg_file(const std::string& path);
Image decode_png_file(const std::string& path);
Image decode_jpeg_memory(const uint8_t* data, size_t size, const std::string& what);
Image decode_png_memory(const uint8_t* data, size_t size, const std::string& what);
// By content (JPEG FF D8 FF / PNG signature), the file name only in the error message.
Image decode_image_file(const std::string& path);
Image decode_image_memory(const uint8_t* data, size_t size, const std::string& what);

// A label map (C = 1, values as stored; see the header comment). `what` names the file in errors.
Image decode_label_png_file(const std::string& path);
Image decode_label_png_memory(const uint8_t* data, size_t size, const std::string& what);

// The declared size only (no pixel allocation); refuses images above the pixel limit like the decoders.
struct ImageHeader {
  int H = 0, W = 0;
  const char* format = "";  // "PNG" or "JPEG"
};
ImageHeader read_image_header_memory(const uint8_t* data, size_t size, const std::string& what);

// Writers (for tests and tools). channels: JPEG 1 or 3; PNG 1 (gray), 2 (gray+alpha), 3 (RGB), 4 (RGBA).
// Data is interleaved HWC. Written atomically (temp file + rename).
void write_jpeg_file(const std::string& path, const uint8_t* hwc, int H, int W, int channels, int quality = 95);
void write_png_file(const std::string& path, const uint8_t* hwc, int H, int W, int channels);

// Bilinear resize of an interleaved image (align_corners = false, edge clamp, rounded to nearest).
Image resize_bilinear(const Image& in, int H, int W);

}  // namespace rf::data
