// Image files -> normalised network input for `reframe predict` (see predict.h).
#include "app/predict.h"

#include <omp.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "datasets/image_folder.h"
#include "host/core/check.h"

namespace fs = std::filesystem;

namespace rf {

namespace {

bool has_image_extension(const fs::path& p) {
  std::string e = p.extension().string();
  for (char& c : e) c = char(std::tolower(static_cast<unsigned char>(c)));
  return e == ".jpg" || e == ".jpeg" || e == ".png";
}

bool hidden(const fs::path& p) {
  const std::string n = p.filename().string();
  return !n.empty() && n[0] == '.';
}

}  // namespace

std::vector<std::string> collect_image_files(const std::vector<std::string>& args) {
  RF_CHECK(!args.empty(), "predict: no images given (expected JPEG/PNG files or folders)");
  std::vector<std::string> out;
  for (const std::string& a : args) {
    std::error_code ec;
    const fs::file_status st = fs::status(a, ec);
    if (ec || !fs::exists(st)) RF_FAIL("{}: no such file or folder (expected a JPEG/PNG image or a folder)", a);
    if (!fs::is_directory(st)) {
      out.push_back(a);
      continue;
    }
    std::vector<std::string> found;
    for (auto it = fs::recursive_directory_iterator(a, fs::directory_options::skip_permission_denied);
         it != fs::recursive_directory_iterator(); ++it) {
      if (hidden(it->path())) {
        if (it->is_directory()) it.disable_recursion_pending();
        continue;
      }
      if (it->is_regular_file() && has_image_extension(it->path())) found.push_back(it->path().string());
    }
    if (found.empty()) RF_FAIL("{}: folder holds no *.jpg, *.jpeg or *.png files", a);
    std::sort(found.begin(), found.end());
    out.insert(out.end(), found.begin(), found.end());
  }
  return out;
}

Tensor load_image_batch(const std::vector<std::string>& files, const PredictInput& in,
                        std::vector<std::pair<int, int>>* sizes) {
  const int64_t N = int64_t(files.size()), H = in.H, W = in.W, C = 3;
  RF_CHECK(N > 0 && H > 0 && W > 0, "predict: empty batch or input size {}x{}", H, W);
  RF_CHECK(in.mean.size() == size_t(C) && in.std.size() == size_t(C),
           "predict: normalisation has {} mean / {} std values, expected {} (RGB)", in.mean.size(), in.std.size(), C);
  // The trainer's lookup table (datasets/loader.cpp): same float expression, so the same bits as in eval.
  float lut[3][256];
  for (int c = 0; c < 3; ++c)
    for (int k = 0; k < 256; ++k) lut[c][k] = (float(k) / 255.0f - in.mean[size_t(c)]) / in.std[size_t(c)];
  Tensor x = Tensor::empty(Shape{N, C, H, W});
  float* out = x.f32();
  // Decoding dominates and is per file: parallel over files, errors carried out of the OpenMP region.
  std::vector<std::string> errors(files.size());
  if (sizes) sizes->assign(files.size(), {0, 0});
#pragma omp parallel for schedule(dynamic)
  for (int64_t i = 0; i < N; ++i) {
    try {
      data::Image img = data::decode_image_file(files[size_t(i)]);
      if (sizes) (*sizes)[size_t(i)] = {img.H, img.W};
      if (img.H != H || img.W != W) {
        if (!in.resize)
          RF_FAIL("{}: image is {}x{} (height x width), the package's network input is {}x{}; pass --resize to "
                  "scale it (bilinear, aspect ratio not kept) or give images of that size", files[size_t(i)], img.H,
                  img.W, H, W);
        img = data::resize_bilinear(img, int(H), int(W));
      }
      RF_CHECK(img.C == 3, "{}: decoded to {} channels, expected 3", files[size_t(i)], img.C);
      float* o = out + i * C * H * W;
      for (int64_t p = 0; p < H * W; ++p)
        for (int64_t c = 0; c < C; ++c) o[c * H * W + p] = lut[c][img.hwc[size_t(p * C + c)]];
    } catch (const std::exception& e) {
      errors[size_t(i)] = e.what();
    }
  }
  for (const std::string& e : errors)
    if (!e.empty()) throw Error(e);
  return x;
}

namespace {

std::vector<std::string> split_list(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

std::vector<float> parse_floats(const std::string& s, const char* cmd, const char* opt) {
  std::vector<float> v;
  for (const std::string& t : split_list(s, ',')) {
    size_t used = 0;
    float x = 0;
    try {
      x = std::stof(t, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (t.empty() || used != t.size() || !std::isfinite(x))
      RF_FAIL("{}: {} '{}': value '{}' is not a finite number (expected R,G,B, e.g. 0.4914,0.4822,0.4465)", cmd, opt,
              s, t);
    v.push_back(x);
  }
  if (v.size() != 3) RF_FAIL("{}: {} '{}': {} values, expected 3 (R,G,B)", cmd, opt, s, v.size());
  return v;
}

}  // namespace

void apply_meta_options(PackageMeta& m, const std::string& size, const std::string& mean, const std::string& std,
                        const std::string& classes, const char* cmd) {
  if (!size.empty()) {
    std::vector<std::string> hw = split_list(size, 'x');
    if (hw.size() == 1) hw.push_back(hw[0]);
    int64_t v[2] = {0, 0};
    for (int i = 0; i < 2; ++i) {
      size_t used = 0;
      try {
        v[i] = std::stoll(hw[size_t(i)], &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (hw.size() != 2 || hw[size_t(i)].empty() || used != hw[size_t(i)].size() || v[i] < 1 ||
          v[i] > kMaxMetaInputSize)
        RF_FAIL("{}: --size '{}': expected S or HxW with sizes 1..{} (e.g. 32 or 224x224)", cmd, size,
                kMaxMetaInputSize);
    }
    m.input_h = v[0], m.input_w = v[1];
  }
  if (!mean.empty()) m.mean = parse_floats(mean, cmd, "--mean");
  if (!std.empty()) {
    m.std = parse_floats(std, cmd, "--std");
    for (float x : m.std)
      if (!(x > 0.f)) RF_FAIL("{}: --std '{}': value {} must be > 0", cmd, std, x);
  }
  if (!classes.empty()) {
    std::vector<std::string> names;
    if (classes[0] == '@') {
      std::ifstream f(classes.substr(1));
      if (!f) RF_FAIL("{}: --classes {}: cannot open the file of class names", cmd, classes);
      for (std::string line; std::getline(f, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!line.empty()) names.push_back(line);
      }
    } else {
      names = split_list(classes, ',');
    }
    for (size_t k = 0; k < names.size(); ++k)
      if (names[k].empty() || names[k].size() > kMaxClassNameLen)
        RF_FAIL("{}: --classes: name {} is {} bytes, expected 1..{}", cmd, k, names[k].size(), kMaxClassNameLen);
    if (names.empty()) RF_FAIL("{}: --classes {}: no class names", cmd, classes);
    m.classes = names;
  }
}

std::vector<double> json_floats(const std::vector<float>& v) {
  std::vector<double> out;
  for (float x : v) out.push_back(std::stod(fmt::format("{}", x)));
  return out;
}

std::vector<double> softmax(const float* l, int64_t K) {
  double mx = -INFINITY;
  for (int64_t k = 0; k < K; ++k) mx = std::max(mx, double(l[k]));
  std::vector<double> p(static_cast<size_t>(K));
  double s = 0;
  for (int64_t k = 0; k < K; ++k) s += (p[size_t(k)] = std::exp(double(l[k]) - mx));
  for (double& v : p) v /= s;
  return p;
}

}  // namespace rf
