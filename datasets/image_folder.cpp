// Image-folder loader and the JPEG/PNG codecs behind it.
// libjpeg and libpng report fatal errors through callbacks that must not return; ours format the
// message and longjmp back to the decode function, which cleans up and throws rf::Error naming the
// file. Only C frames (the libraries') are skipped by the longjmp, so no C++ destructor is bypassed.
// libjpeg warnings (e.g. "Premature end of JPEG file", which libjpeg would otherwise paper over with
// grey pixels) are treated as errors too: a truncated image is a malformed input, not a silent answer.
// Decoding: files are read whole into memory, then decoded with OpenMP over files (about 25 us per
// 32x32 JPEG, so CIFAR-10's 60,000 take ~1.5 s of CPU), written straight into the dataset as CHW.
// Checked by tests/datasets/test_image_folder.cpp.
#include "datasets/image_folder.h"

#include <omp.h>
#include <png.h>

#include <algorithm>
#include <cctype>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include <jpeglib.h>

#include "host/core/check.h"

namespace fs = std::filesystem;

namespace rf::data {

namespace {

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  RF_CHECK(f.good(), "{}: cannot open for reading", path);
  const std::streamsize n = f.tellg();
  f.seekg(0);
  std::vector<uint8_t> buf(size_t(std::max<std::streamsize>(n, 0)));
  f.read(reinterpret_cast<char*>(buf.data()), n);
  RF_CHECK(f.gcount() == n, "{}: read {} of {} bytes", path, f.gcount(), n);
  return buf;
}

// ---- JPEG ----------------------------------------------------------------------------------------
struct JpegErr {
  jpeg_error_mgr pub;
  std::jmp_buf jb;
  char msg[JMSG_LENGTH_MAX];
};

extern "C" void rf_jpeg_error_exit(j_common_ptr cinfo) {
  JpegErr* e = reinterpret_cast<JpegErr*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->msg);
  std::longjmp(e->jb, 1);
}
extern "C" void rf_jpeg_emit_message(j_common_ptr cinfo, int level) {
  if (level < 0) rf_jpeg_error_exit(cinfo);  // a warning = corrupt data: fail (see the header comment)
}
extern "C" void rf_jpeg_output_message(j_common_ptr) {}

// Returns 0 on success, 1 after a libjpeg error (message in err.msg). out/H/W are only written on success.
int jpeg_decode_raw(const uint8_t* data, size_t size, JpegErr& err, std::vector<uint8_t>* out, int* H, int* W) {
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
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  cinfo.out_color_space = JCS_RGB;  // grayscale and YCbCr -> RGB in libjpeg; CMYK is refused (an error)
  jpeg_start_decompress(&cinfo);
  const int w = int(cinfo.output_width), h = int(cinfo.output_height);
  out->resize(size_t(w) * size_t(h) * 3);
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
struct PngCtx {
  const uint8_t* data;
  size_t size, pos;
  char msg[256];
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

int png_decode_raw(PngCtx& ctx, std::vector<uint8_t>* out, std::vector<png_bytep>* rows, int* H, int* W) {
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
  png_read_info(png, info);
  const png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  const int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
  if (depth == 16) png_set_strip_16(png);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
  png_set_strip_alpha(png);  // RGBA / grey+alpha: alpha dropped (no compositing)
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8)
    png_error(png, "could not convert to 8-bit RGB");
  if (w == 0 || h == 0 || w > 65536 || h > 65536) png_error(png, "image size out of range");
  out->resize(size_t(w) * size_t(h) * 3);
  rows->resize(h);
  for (png_uint_32 y = 0; y < h; ++y) (*rows)[y] = out->data() + size_t(y) * size_t(w) * 3;
  png_read_image(png, rows->data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  *H = int(h);
  *W = int(w);
  return 0;
}

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_image_name(const fs::path& p) {
  const std::string e = lower(p.extension().string());
  return e == ".jpg" || e == ".jpeg" || e == ".png";
}

void atomic_rename(const std::string& tmp, const std::string& path) {
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    RF_FAIL("{}: cannot rename the temporary file into place", path);
  }
}

}  // namespace

Image decode_jpeg_memory(const uint8_t* data, size_t size, const std::string& what) {
  RF_CHECK(size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF,
           "{}: not a JPEG file (expected the bytes FF D8 FF at the start, file has {} bytes)", what, size);
  Image img;
  JpegErr err;
  err.msg[0] = 0;
  if (jpeg_decode_raw(data, size, err, &img.hwc, &img.H, &img.W) != 0)
    RF_FAIL("{}: bad JPEG ({} bytes): {}", what, size, err.msg);
  img.C = 3;
  return img;
}

Image decode_png_memory(const uint8_t* data, size_t size, const std::string& what) {
  RF_CHECK(size >= 8 && png_sig_cmp(data, 0, 8) == 0,
           "{}: not a PNG file (expected the 8-byte PNG signature at the start, file has {} bytes)", what, size);
  Image img;
  std::vector<png_bytep> rows;
  PngCtx ctx{data, size, 0, {0}};
  if (png_decode_raw(ctx, &img.hwc, &rows, &img.H, &img.W) != 0)
    RF_FAIL("{}: bad PNG ({} bytes): {}", what, size, ctx.msg);
  img.C = 3;
  return img;
}

Image decode_jpeg_file(const std::string& path) {
  const auto buf = read_file(path);
  return decode_jpeg_memory(buf.data(), buf.size(), path);
}
Image decode_png_file(const std::string& path) {
  const auto buf = read_file(path);
  return decode_png_memory(buf.data(), buf.size(), path);
}
Image decode_image_file(const std::string& path) {
  const auto buf = read_file(path);
  if (buf.size() >= 8 && png_sig_cmp(buf.data(), 0, 8) == 0) return decode_png_memory(buf.data(), buf.size(), path);
  if (buf.size() >= 2 && buf[0] == 0xFF && buf[1] == 0xD8) return decode_jpeg_memory(buf.data(), buf.size(), path);
  RF_FAIL("{}: neither a JPEG (FF D8 FF ...) nor a PNG (89 50 4E 47 ...) file ({} bytes)", path, buf.size());
}

void write_jpeg_file(const std::string& path, const uint8_t* hwc, int H, int W, int channels, int quality) {
  RF_CHECK(channels == 1 || channels == 3, "{}: JPEG writer takes 1 or 3 channels, got {}", path, channels);
  RF_CHECK(H > 0 && W > 0, "{}: image size {}x{}", path, H, W);
  const std::string tmp = path + ".tmp";
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
  RF_CHECK(std::fclose(f) == 0, "{}: write failed", tmp);
  atomic_rename(tmp, path);
}

void write_png_file(const std::string& path, const uint8_t* hwc, int H, int W, int channels) {
  RF_CHECK(channels >= 1 && channels <= 4, "{}: PNG writer takes 1..4 channels, got {}", path, channels);
  RF_CHECK(H > 0 && W > 0, "{}: image size {}x{}", path, H, W);
  const std::string tmp = path + ".tmp";
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
  RF_CHECK(std::fclose(f) == 0, "{}: write failed", tmp);
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

bool looks_like_image_folder(const std::string& root) {
  std::error_code ec;
  const fs::path t = fs::path(root) / "train";
  if (!fs::is_directory(t, ec)) return false;
  for (const auto& e : fs::directory_iterator(t, ec))
    if (e.is_directory()) return true;
  return false;
}

Dataset load_image_folder(const std::string& root, const std::string& split, const ImageFolderOptions& opt,
                          ImageFolderReport* report) {
  const fs::path dir = fs::path(root) / split;
  RF_CHECK(fs::is_directory(root), "image folder: root {} is not a directory (expected root/<split>/<class>/*.jpg)",
           root);
  RF_CHECK(fs::is_directory(dir), "image folder: missing split folder {} (expected {}/<class>/*.jpg|png)",
           dir.string(), dir.string());
  RF_CHECK((opt.resize_h > 0) == (opt.resize_w > 0), "image folder: resize {}x{}: give both sides or neither",
           opt.resize_h, opt.resize_w);

  std::vector<std::string> classes;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (e.is_directory() && !n.empty() && n[0] != '.') classes.push_back(n);
  }
  std::sort(classes.begin(), classes.end());
  RF_CHECK(!classes.empty(), "image folder: {} has no class folders (expected {}/<class>/*.jpg|png)", dir.string(),
           dir.string());

  ImageFolderReport rep;
  std::vector<std::string> files;
  std::vector<int32_t> labels;
  for (size_t k = 0; k < classes.size(); ++k) {
    const fs::path cdir = dir / classes[k];
    std::vector<std::string> mine;
    for (const auto& e : fs::directory_iterator(cdir)) {
      if (e.is_directory()) continue;  // nested folders are not part of the layout
      const std::string n = e.path().filename().string();
      if (!n.empty() && n[0] != '.' && is_image_name(e.path())) {
        mine.push_back(e.path().string());
      } else {
        RF_CHECK(opt.skip_non_images, "image folder: {} is not an image (expected .jpg, .jpeg or .png)",
                 e.path().string());
        ++rep.skipped_files;
        if (rep.skipped_examples.size() < 5) rep.skipped_examples.push_back(e.path().string());
      }
    }
    RF_CHECK(!mine.empty(), "image folder: class folder {} holds no .jpg/.jpeg/.png images", cdir.string());
    std::sort(mine.begin(), mine.end());
    for (auto& m : mine) {
      files.push_back(std::move(m));
      labels.push_back(int32_t(k));
    }
  }

  const int64_t N = int64_t(files.size());
  int H = opt.resize_h, W = opt.resize_w;
  if (H == 0) {  // the first image sets the size everyone must match
    const Image first = decode_image_file(files[0]);
    H = first.H;
    W = first.W;
  }
  Dataset d;
  d.name = "image-folder:" + fs::path(root).filename().string() + "/" + split;
  d.N = N;
  d.C = 3;
  d.H = H;
  d.W = W;
  d.classes = classes;
  d.labels = labels;
  d.pixels.resize(size_t(N) * 3 * size_t(H) * size_t(W));

  // OpenMP over files; an exception may not leave the parallel region, so each thread keeps the error of
  // the lowest-numbered file it saw and the lowest one overall is rethrown (deterministic message).
  int64_t err_index = N;
  std::string err_msg;
  const int threads = opt.threads > 0 ? opt.threads : omp_get_max_threads();
  const size_t plane = size_t(H) * size_t(W);
#pragma omp parallel for schedule(dynamic, 64) num_threads(threads)
  for (int64_t i = 0; i < N; ++i) {
    try {
      Image img = decode_image_file(files[size_t(i)]);
      if (img.H != H || img.W != W) {
        if (opt.resize_h > 0)
          img = resize_bilinear(img, H, W);
        else
          RF_FAIL("image folder: {} is {}x{} (HxW) but {} is {}x{}; all images must share one size (or ask "
                  "for a resize)",
                  files[size_t(i)], img.H, img.W, files[0], H, W);
      }
      uint8_t* out = d.pixels.data() + size_t(i) * 3 * plane;
      for (size_t p = 0; p < plane; ++p)
        for (size_t c = 0; c < 3; ++c) out[c * plane + p] = img.hwc[p * 3 + c];
    } catch (const std::exception& e) {
#pragma omp critical(rf_image_folder_error)
      {
        if (i < err_index) {
          err_index = i;
          err_msg = e.what();
        }
      }
    }
  }
  if (err_index < N) throw Error(err_msg);
  if (report) *report = rep;
  return d;
}

}  // namespace rf::data
