// JPEG and PNG codecs (libjpeg-turbo, libpng): decoding with a pixel limit checked on the header first, label
// maps read as stored, atomic writers, bilinear resize.
// libjpeg and libpng report fatal errors through callbacks that must not return; ours format the
// message and longjmp back to the decode function, which cleans up and throws rf::Error naming the
// file. Only C frames (the libraries') are skipped by the longjmp, so no C++ destructor is bypassed.
// libjpeg warnings (e.g. "Premature end of JPEG file", which libjpeg would otherwise paper over with
// grey pixels) are treated as errors too: a truncated image is a malformed input, not a silent answer.
// Checked by tests/datasets/test_image_folder.cpp (codecs and folders) and fuzz/fuzz_image.cpp.
#include "datasets/image_codec.h"

#include <omp.h>
#include <fcntl.h>
#include <png.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <new>
#include <cctype>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include <jpeglib.h>
#include <jerror.h>

#include "host/core/check.h"
#include "datasets/dataset.h"

namespace fs = std::filesystem;

namespace rf::data {

namespace {

std::atomic<int64_t> g_max_image_pixels{kDefaultMaxImagePixels};

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  RF_CHECK(f.good(), "{}: cannot open for reading", path);
  const std::streamsize n = f.tellg();
  f.seekg(0);
  std::vector<uint8_t> buf;
  try {
    buf.resize(size_t(std::max<std::streamsize>(n, 0)));
  } catch (const std::bad_alloc&) {
    RF_FAIL("{}: out of memory reading the file ({} bytes) into memory", path, with_commas(uint64_t(n)));
  }
  f.read(reinterpret_cast<char*>(buf.data()), n);
  RF_CHECK(f.gcount() == n, "{}: read {} of {} bytes", path, f.gcount(), n);
  return buf;
}

// How a decode failed: the message goes with a prefix that depends on the kind.
enum FailKind { kFailCodec = 0, kFailFormat = 1, kFailTooLarge = 2, kFailOom = 3 };

// Size of a decoded image in bytes (checked against the pixel limit first, so no overflow).
std::string too_large_message(const std::string& what, const char* fmt_name, uint64_t W, uint64_t H) {
  const int64_t lim = max_image_pixels();
  return fmt::format("{}: the {} header declares {}x{} (WxH) = {} pixels, above the limit of {} pixels (default "
                     "8192x8192); refused before decoding (raise the limit with --max-image-pixels)",
                     what, fmt_name, W, H, with_commas(W * H), with_commas(uint64_t(lim)));
}

bool too_many_pixels(uint64_t W, uint64_t H) {
  // W, H < 2^32 each, so W * H fits in 64 bits.
  return W == 0 || H == 0 || W * H > uint64_t(max_image_pixels());
}

// ---- JPEG ----------------------------------------------------------------------------------------
// Progressive JPEGs may hold any number of scans, each a pass over the whole image: a small file with
// thousands of scans makes a CPU bomb. libjpeg-turbo's advice is a limit; real encoders write at most ~10.
constexpr int kMaxJpegScans = 1000;

struct JpegErr {
  jpeg_error_mgr pub;
  jpeg_progress_mgr progress;
  std::jmp_buf jb;
  char msg[JMSG_LENGTH_MAX + 64];
  int kind = kFailCodec;
  uint64_t W = 0, H = 0;  // declared size (for the messages)
};

extern "C" void rf_jpeg_error_exit(j_common_ptr cinfo) {
  JpegErr* e = reinterpret_cast<JpegErr*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->msg);
  if (cinfo->err->msg_code == JERR_OUT_OF_MEMORY) e->kind = kFailOom;
  std::longjmp(e->jb, 1);
}
extern "C" void rf_jpeg_emit_message(j_common_ptr cinfo, int level) {
  if (level < 0) rf_jpeg_error_exit(cinfo);  // a warning = corrupt data: fail (see the header comment)
}
extern "C" void rf_jpeg_output_message(j_common_ptr) {}
extern "C" void rf_jpeg_progress(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor) return;
  j_decompress_ptr d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->input_scan_number > kMaxJpegScans) {
    JpegErr* e = reinterpret_cast<JpegErr*>(cinfo->err);
    std::snprintf(e->msg, sizeof(e->msg), "more than %d progressive scans (refused: a real encoder writes ~10)",
                  kMaxJpegScans);
    std::longjmp(e->jb, 1);
  }
}

// Returns 0 on success, 1 after a failure (kind and message in err). out/H/W are only written on success.
// header_only: stop after the header (H/W set, nothing allocated for pixels).
int jpeg_decode_raw(const uint8_t* data, size_t size, JpegErr& err, std::vector<uint8_t>* out, int* H, int* W,
                    bool header_only) {
  jpeg_decompress_struct cinfo;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = rf_jpeg_error_exit;
  err.pub.emit_message = rf_jpeg_emit_message;
  err.pub.output_message = rf_jpeg_output_message;
  if (setjmp(err.jb)) {
    jpeg_destroy_decompress(&cinfo);
    return 1;
  }
  jpeg_create_decompress(&cinfo);
  err.progress.progress_monitor = rf_jpeg_progress;
  cinfo.progress = &err.progress;
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  // The header (SOF) decides the allocation: check it before libjpeg allocates anything for the pixels.
  err.W = cinfo.image_width;
  err.H = cinfo.image_height;
  if (too_many_pixels(err.W, err.H)) {
    err.kind = kFailTooLarge;
    jpeg_destroy_decompress(&cinfo);
    return 1;
  }
  if (header_only) {
    jpeg_destroy_decompress(&cinfo);
    *H = int(err.H);
    *W = int(err.W);
    return 0;
  }
  cinfo.out_color_space = JCS_RGB;  // grayscale and YCbCr -> RGB in libjpeg; CMYK is refused (an error)
  jpeg_start_decompress(&cinfo);
  const int w = int(cinfo.output_width), h = int(cinfo.output_height);
  try {
    out->resize(size_t(w) * size_t(h) * 3);
  } catch (const std::bad_alloc&) {
    err.kind = kFailOom;
    jpeg_destroy_decompress(&cinfo);
    return 1;
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out->data() + size_t(cinfo.output_scanline) * size_t(w) * 3;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  *H = h;
  *W = w;
  return 0;
}

// ---- PNG -----------------------------------------------------------------------------------------
enum PngMode { kPngRgb, kPngLabel, kPngHeader };

struct PngCtx {
  const uint8_t* data;
  size_t size, pos;
  char msg[320];
  int kind = kFailCodec;
  uint64_t W = 0, H = 0;
};

extern "C" void rf_png_error(png_structp png, png_const_charp msg) {
  PngCtx* c = static_cast<PngCtx*>(png_get_error_ptr(png));
  std::snprintf(c->msg, sizeof(c->msg), "%s", msg);
  png_longjmp(png, 1);
}
extern "C" void rf_png_warning(png_structp, png_const_charp) {}
extern "C" void rf_png_read(png_structp png, png_bytep out, png_size_t n) {
  PngCtx* c = static_cast<PngCtx*>(png_get_io_ptr(png));
  if (c->size - c->pos < n) png_error(png, "unexpected end of file (truncated PNG)");
  std::memcpy(out, c->data + c->pos, n);
  c->pos += n;
}

const char* png_color_name(int color) {
  switch (color) {
    case PNG_COLOR_TYPE_GRAY: return "grayscale";
    case PNG_COLOR_TYPE_GRAY_ALPHA: return "grayscale+alpha";
    case PNG_COLOR_TYPE_PALETTE: return "palette";
    case PNG_COLOR_TYPE_RGB: return "RGB";
    case PNG_COLOR_TYPE_RGB_ALPHA: return "RGBA";
    default: return "unknown colour type";
  }
}

// kPngRgb: 8-bit RGB out (C = 3). kPngLabel: the stored sample values, unscaled: 1 channel for grayscale
// (1/2/4/8-bit) and palette (the indices), 3 channels for 8-bit RGB; 16-bit and alpha refused. kPngHeader:
// the size only. Returns 0 on success, 1 after a failure (kind and message in ctx).
int png_decode_raw(PngCtx& ctx, PngMode mode, std::vector<uint8_t>* out, std::vector<png_bytep>* rows, int* H,
                   int* W, int* C) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, rf_png_error, rf_png_warning);
  if (!png) {
    std::snprintf(ctx.msg, sizeof(ctx.msg), "png_create_read_struct failed");
    return 1;
  }
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    std::snprintf(ctx.msg, sizeof(ctx.msg), "png_create_info_struct failed");
    return 1;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return 1;
  }
  png_set_read_fn(png, &ctx, rf_png_read);
  // libpng's own caps (1,000,000 per side by default) are above what we allow; ancillary chunks are capped
  // at 8 MB so a compressed text chunk cannot inflate without bound.
  png_set_user_limits(png, 0x7fffffffu, 0x7fffffffu);
  png_set_chunk_malloc_max(png, 8u << 20);
  png_read_info(png, info);
  // IHDR decides the allocation: check it before anything is allocated for the pixels.
  const png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  ctx.W = w;
  ctx.H = h;
  if (too_many_pixels(w, h)) {
    ctx.kind = kFailTooLarge;
    png_destroy_read_struct(&png, &info, nullptr);
    return 1;
  }
  if (mode == kPngHeader) {
    png_destroy_read_struct(&png, &info, nullptr);
    *H = int(h);
    *W = int(w);
    *C = 0;
    return 0;
  }
  const int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
  int channels = 3;
  if (mode == kPngLabel) {
    // A refusal is not a libpng error: no longjmp (that would skip C++ destructors), just clean up and return.
    const char* refusal = nullptr;
    if (depth == 16)
      refusal = "label map is 16-bit (%s); expected an 8-bit single-channel PNG (grayscale or palette indices)";
    else if (color == PNG_COLOR_TYPE_GRAY_ALPHA || color == PNG_COLOR_TYPE_RGB_ALPHA)
      refusal = "label map is %s (has an alpha channel); expected an 8-bit single-channel PNG (grayscale or palette "
                "indices)";
    else if (color != PNG_COLOR_TYPE_GRAY && color != PNG_COLOR_TYPE_PALETTE && color != PNG_COLOR_TYPE_RGB)
      refusal = "label map has an unknown PNG colour type (%s); expected an 8-bit single-channel PNG";
    if (refusal) {
      std::snprintf(ctx.msg, sizeof(ctx.msg), refusal, png_color_name(color));
      ctx.kind = kFailFormat;
      png_destroy_read_struct(&png, &info, nullptr);
      return 1;
    }
    if (color != PNG_COLOR_TYPE_RGB) {
      channels = 1;
      if (depth < 8) png_set_packing(png);  // 1/2/4-bit samples to one byte each, values unscaled
    }
    // No palette expansion, no tRNS, no gamma: the stored values are the labels.
  } else {
    if (depth == 16) png_set_strip_16(png);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    png_set_strip_alpha(png);  // RGBA / grey+alpha: alpha dropped (no compositing)
  }
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  if (int(png_get_channels(png, info)) != channels || png_get_bit_depth(png, info) != 8 ||
      png_get_rowbytes(png, info) != size_t(w) * size_t(channels))
    png_error(png, "could not convert to 8-bit samples");
  try {
    out->resize(size_t(w) * size_t(h) * size_t(channels));
    rows->resize(h);
  } catch (const std::bad_alloc&) {
    ctx.kind = kFailOom;
    png_destroy_read_struct(&png, &info, nullptr);
    return 1;
  }
  for (png_uint_32 y = 0; y < h; ++y) (*rows)[y] = out->data() + size_t(y) * size_t(w) * size_t(channels);
  png_read_image(png, rows->data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  *H = int(h);
  *W = int(w);
  *C = channels;
  return 0;
}

void check_png_signature(const uint8_t* data, size_t size, const std::string& what) {
  RF_CHECK(size >= 8 && png_sig_cmp(data, 0, 8) == 0,
           "{}: not a PNG file (expected the 8-byte PNG signature at the start, file has {} bytes)", what, size);
}

// Runs png_decode_raw and turns a failure into rf::Error naming the file (and the size where it matters).
Image png_decode_checked(const uint8_t* data, size_t size, const std::string& what, PngMode mode) {
  check_png_signature(data, size, what);
  Image img;
  std::vector<png_bytep> rows;
  PngCtx ctx{data, size, 0, {0}};
  if (png_decode_raw(ctx, mode, &img.hwc, &rows, &img.H, &img.W, &img.C) != 0) {
    switch (ctx.kind) {
      case kFailTooLarge:
        throw Error(too_large_message(what, "PNG", ctx.W, ctx.H));
      case kFailOom:
        RF_FAIL("{}: out of memory decoding a {}x{} (WxH) PNG ({} bytes of pixels)", what, ctx.W, ctx.H,
                with_commas(ctx.W * ctx.H * 3));
      case kFailFormat:
        RF_FAIL("{}: {}", what, ctx.msg);
      default:
        RF_FAIL("{}: bad PNG ({} bytes): {}", what, size, ctx.msg);
    }
  }
  return img;
}

// Image writes land like packages do: a per-process temp name (two writers never share one), the data
// fsynced, renamed into place, then the folder fsynced so the rename survives a crash.
std::string temp_name(const std::string& path) { return fmt::format("{}.tmp.{}", path, long(::getpid())); }

void close_synced(FILE* f, const std::string& tmp) {
  const bool ok = std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed) {
    std::remove(tmp.c_str());
    RF_FAIL("{}: write failed (disk full?)", tmp);
  }
}

void atomic_rename(const std::string& tmp, const std::string& path) {
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    RF_FAIL("{}: cannot rename the temporary file into place: {}", path, ec.message());
  }
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

void set_max_image_pixels(int64_t n) { g_max_image_pixels.store(n > 0 ? n : kDefaultMaxImagePixels); }
int64_t max_image_pixels() { return g_max_image_pixels.load(); }

Image decode_jpeg_memory(const uint8_t* data, size_t size, const std::string& what) {
  RF_CHECK(size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF,
           "{}: not a JPEG file (expected the bytes FF D8 FF at the start, file has {} bytes)", what, size);
  Image img;
  JpegErr err;
  err.msg[0] = 0;
  if (jpeg_decode_raw(data, size, err, &img.hwc, &img.H, &img.W, false) != 0) {
    if (err.kind == kFailTooLarge) throw Error(too_large_message(what, "JPEG", err.W, err.H));
    if (err.kind == kFailOom)
      RF_FAIL("{}: out of memory decoding a {}x{} (WxH) JPEG ({} bytes of pixels){}{}", what, err.W, err.H,
              with_commas(err.W * err.H * 3), err.msg[0] ? ": " : "", err.msg);
    RF_FAIL("{}: bad JPEG ({} bytes): {}", what, size, err.msg);
  }
  img.C = 3;
  return img;
}

Image decode_png_memory(const uint8_t* data, size_t size, const std::string& what) {
  return png_decode_checked(data, size, what, kPngRgb);
}

Image decode_label_png_memory(const uint8_t* data, size_t size, const std::string& what) {
  Image img = png_decode_checked(data, size, what, kPngLabel);
  if (img.C == 3) {  // 8-bit RGB: a label map only when the three channels agree everywhere
    const size_t n = size_t(img.H) * size_t(img.W);
    for (size_t p = 0; p < n; ++p) {
      const uint8_t* px = img.hwc.data() + p * 3;
      if (px[0] != px[1] || px[0] != px[2])
        RF_FAIL("{}: label map is an RGB PNG whose channels differ at pixel (x={}, y={}): {}, {}, {} (a colour-coded "
                "map?); expected an 8-bit single-channel PNG (grayscale or palette indices)",
                what, p % size_t(img.W), p / size_t(img.W), int(px[0]), int(px[1]), int(px[2]));
      img.hwc[p] = px[0];
    }
    img.hwc.resize(n);
    img.hwc.shrink_to_fit();
    img.C = 1;
  }
  return img;
}

ImageHeader read_image_header_memory(const uint8_t* data, size_t size, const std::string& what) {
  ImageHeader h;
  if (size >= 8 && png_sig_cmp(data, 0, 8) == 0) {
    std::vector<uint8_t> none;
    std::vector<png_bytep> rows;
    PngCtx ctx{data, size, 0, {0}};
    int C = 0;
    if (png_decode_raw(ctx, kPngHeader, &none, &rows, &h.H, &h.W, &C) != 0) {
      if (ctx.kind == kFailTooLarge) throw Error(too_large_message(what, "PNG", ctx.W, ctx.H));
      RF_FAIL("{}: bad PNG ({} bytes): {}", what, size, ctx.msg);
    }
    h.format = "PNG";
    return h;
  }
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) {
    JpegErr err;
    err.msg[0] = 0;
    if (jpeg_decode_raw(data, size, err, nullptr, &h.H, &h.W, true) != 0) {
      if (err.kind == kFailTooLarge) throw Error(too_large_message(what, "JPEG", err.W, err.H));
      RF_FAIL("{}: bad JPEG ({} bytes): {}", what, size, err.msg);
    }
    h.format = "JPEG";
    return h;
  }
  RF_FAIL("{}: neither a JPEG (FF D8 FF ...) nor a PNG (89 50 4E 47 ...) file ({} bytes)", what, size);
}

Image decode_jpeg_file(const std::string& path) {
  const auto buf = read_file(path);
  return decode_jpeg_memory(buf.data(), buf.size(), path);
}
Image decode_png_file(const std::string& path) {
  const auto buf = read_file(path);
  return decode_png_memory(buf.data(), buf.size(), path);
}
Image decode_label_png_file(const std::string& path) {
  const auto buf = read_file(path);
  return decode_label_png_memory(buf.data(), buf.size(), path);
}
Image decode_image_memory(const uint8_t* data, size_t size, const std::string& what) {
  if (size >= 8 && png_sig_cmp(data, 0, 8) == 0) return decode_png_memory(data, size, what);
  if (size >= 2 && data[0] == 0xFF && data[1] == 0xD8) return decode_jpeg_memory(data, size, what);
  RF_FAIL("{}: neither a JPEG (FF D8 FF ...) nor a PNG (89 50 4E 47 ...) file ({} bytes)", what, size);
}
Image decode_image_file(const std::string& path) {
  const auto buf = read_file(path);
  return decode_image_memory(buf.data(), buf.size(), path);
}

void write_jpeg_file(const std::string& path, const uint8_t* hwc, int H, int W, int channels, int quality) {
  RF_CHECK(channels == 1 || channels == 3, "{}: JPEG writer takes 1 or 3 channels, got {}", path, channels);
  RF_CHECK(H > 0 && W > 0, "{}: image size {}x{}", path, H, W);
  const std::string tmp = temp_name(path);
  FILE* f = std::fopen(tmp.c_str(), "wb");
  RF_CHECK(f, "{}: cannot open for writing", tmp);
  jpeg_compress_struct cinfo;
  JpegErr err;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = rf_jpeg_error_exit;
  err.pub.output_message = rf_jpeg_output_message;
  if (setjmp(err.jb)) {
    jpeg_destroy_compress(&cinfo);
    std::fclose(f);
    std::remove(tmp.c_str());
    RF_FAIL("{}: JPEG encoding failed: {}", path, err.msg);
  }
  jpeg_create_compress(&cinfo);
  jpeg_stdio_dest(&cinfo, f);
  cinfo.image_width = JDIMENSION(W);
  cinfo.image_height = JDIMENSION(H);
  cinfo.input_components = channels;
  cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(hwc + size_t(cinfo.next_scanline) * size_t(W) * size_t(channels));
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  close_synced(f, tmp);
  atomic_rename(tmp, path);
}

void write_png_file(const std::string& path, const uint8_t* hwc, int H, int W, int channels) {
  RF_CHECK(channels >= 1 && channels <= 4, "{}: PNG writer takes 1..4 channels, got {}", path, channels);
  RF_CHECK(H > 0 && W > 0, "{}: image size {}x{}", path, H, W);
  const std::string tmp = temp_name(path);
  FILE* f = std::fopen(tmp.c_str(), "wb");
  RF_CHECK(f, "{}: cannot open for writing", tmp);
  PngCtx ctx{nullptr, 0, 0, {0}};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, rf_png_error, rf_png_warning);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!png || !info) {
    if (png) png_destroy_write_struct(&png, nullptr);
    std::fclose(f);
    RF_FAIL("{}: cannot create the PNG writer", path);
  }
  std::vector<png_bytep> rows(static_cast<size_t>(H));
  for (int y = 0; y < H; ++y) rows[size_t(y)] = const_cast<uint8_t*>(hwc + size_t(y) * size_t(W) * size_t(channels));
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    std::fclose(f);
    std::remove(tmp.c_str());
    RF_FAIL("{}: PNG encoding failed: {}", path, ctx.msg);
  }
  static const int kType[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                               PNG_COLOR_TYPE_RGB_ALPHA};
  png_init_io(png, f);
  png_set_IHDR(png, info, png_uint_32(W), png_uint_32(H), 8, kType[channels], PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  close_synced(f, tmp);
  atomic_rename(tmp, path);
}

Image resize_bilinear(const Image& in, int H, int W) {
  RF_CHECK(in.H > 0 && in.W > 0 && in.C > 0 && H > 0 && W > 0, "resize_bilinear: {}x{}x{} -> {}x{}", in.H, in.W,
           in.C, H, W);
  Image out;
  out.H = H;
  out.W = W;
  out.C = in.C;
  out.hwc.resize(size_t(H) * size_t(W) * size_t(in.C));
  const float sy = float(in.H) / float(H), sx = float(in.W) / float(W);
  for (int y = 0; y < H; ++y) {
    const float fy = std::clamp((float(y) + 0.5f) * sy - 0.5f, 0.f, float(in.H - 1));
    const int y0 = int(fy), y1 = std::min(y0 + 1, in.H - 1);
    const float ay = fy - float(y0);
    for (int x = 0; x < W; ++x) {
      const float fx = std::clamp((float(x) + 0.5f) * sx - 0.5f, 0.f, float(in.W - 1));
      const int x0 = int(fx), x1 = std::min(x0 + 1, in.W - 1);
      const float ax = fx - float(x0);
      for (int c = 0; c < in.C; ++c) {
        auto px = [&](int yy, int xx) { return float(in.hwc[(size_t(yy) * size_t(in.W) + size_t(xx)) * size_t(in.C) + size_t(c)]); };
        const float top = px(y0, x0) * (1 - ax) + px(y0, x1) * ax;
        const float bot = px(y1, x0) * (1 - ax) + px(y1, x1) * ax;
        const float v = top * (1 - ay) + bot * ay;
        out.hwc[(size_t(y) * size_t(W) + size_t(x)) * size_t(in.C) + size_t(c)] =
            uint8_t(std::clamp(int(v + 0.5f), 0, 255));
      }
    }
  }
  return out;
}

}  // namespace rf::data
