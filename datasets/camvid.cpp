// CamVid loader; see camvid.h for the layout and the rules.
// Label maps go through the exact label-PNG reader of image_folder.cpp (no conversion of any kind).
// 233 test pairs decode in ~1 s on 2 cores (JPEG 480x360 ~3 ms, PNG ~1 ms).
// Checked by tests/datasets/test_camvid.cpp.
#include "datasets/camvid.h"

#include <omp.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <new>
#include <sstream>

#include "datasets/first_error.h"
#include "host/core/check.h"

namespace fs = std::filesystem;

namespace rf::data {

const std::vector<std::string>& camvid_class_names() {
  static const std::vector<std::string> names = {"Sky",  "Building",   "Pole",  "Road", "Pavement",  "Tree",
                                                 "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist"};
  return names;
}

bool looks_like_camvid(const std::string& root) {
  std::error_code ec;
  return fs::is_regular_file(fs::path(root) / "train.txt", ec) && fs::is_directory(fs::path(root) / "train", ec);
}

std::vector<CamVidPair> parse_camvid_list(const std::string& text, const std::string& list, const std::string& root) {
  std::vector<CamVidPair> pairs;
  std::map<std::string, int> image_line, label_line;
  std::istringstream lf(text);
  int line_no = 0;
  for (std::string line; std::getline(lf, line);) {
    ++line_no;
    std::istringstream ls(line);
    std::vector<std::string> tok;
    for (std::string t; ls >> t;) tok.push_back(t);
    if (tok.empty()) continue;
    RF_CHECK(tok.size() == 2, "CamVid: {} line {}: '{}' has {} field(s), expected \"image_path label_path\"", list,
             line_no, line, tok.size());
    CamVidPair p;
    p.image = resolve_list_path(root, tok[0], list, line_no, "image path");
    p.label = resolve_list_path(root, tok[1], list, line_no, "label path");
    p.line = line_no;
    RF_CHECK(p.image != p.label, "CamVid: {} line {}: the image and the label map are the same file {}", list, line_no,
             tok[0]);
    const auto ii = image_line.emplace(p.image, line_no);
    RF_CHECK(ii.second, "CamVid: {} line {}: image {} is listed twice (lines {} and {}); each image once", list,
             line_no, tok[0], ii.first->second, line_no);
    const auto li = label_line.emplace(p.label, line_no);
    RF_CHECK(li.second, "CamVid: {} line {}: label map {} is listed twice (lines {} and {}); each label map once",
             list, line_no, tok[1], li.first->second, line_no);
    pairs.push_back(std::move(p));
  }
  RF_CHECK(!pairs.empty(), "CamVid: list file {} holds no image/label pairs", list);
  return pairs;
}

std::vector<uint8_t> read_camvid_label(const uint8_t* data, size_t size, const std::string& what, int num_classes,
                                       int void_label, int* H, int* W) {
  Image lab = decode_label_png_memory(data, size, what);
  RF_CHECK(lab.C == 1, "CamVid: label map {} decodes to {} channels, expected 1", what, lab.C);
  for (size_t p = 0; p < lab.hwc.size(); ++p) {
    const int v = lab.hwc[p];
    if (v >= num_classes && v != void_label)
      RF_FAIL("CamVid: label map {} has value {} at pixel (x={}, y={}); expected 0..{} or void {}", what, v,
              p % size_t(lab.W), p / size_t(lab.W), num_classes - 1, void_label);
  }
  *H = lab.H;
  *W = lab.W;
  return std::move(lab.hwc);
}

SegDataset load_camvid(const std::string& root, const std::string& split, int num_classes, int void_label) {
  RF_CHECK(num_classes >= 1 && num_classes <= 255, "CamVid: num_classes {}, expected 1..255", num_classes);
  RF_CHECK(void_label >= num_classes && void_label <= 255, "CamVid: void label {}, expected {}..255 (not a class)",
           void_label, num_classes);
  const fs::path r(root);
  RF_CHECK(fs::is_directory(r), "CamVid: root {} is not a directory (expected <split>.txt and image folders)", root);
  const fs::path list = r / (split + ".txt");
  std::ifstream lf(list, std::ios::binary);
  RF_CHECK(lf.good(), "CamVid: missing list file {} (expected lines \"image_path label_path\")", list.string());
  std::stringstream text;
  text << lf.rdbuf();
  const std::vector<CamVidPair> pairs = parse_camvid_list(text.str(), list.string(), root);
  std::vector<std::string> img_paths, lbl_paths;
  std::vector<int> line_of;
  for (const CamVidPair& p : pairs) {
    img_paths.push_back(p.image);
    lbl_paths.push_back(p.label);
    line_of.push_back(p.line);
  }

  SegDataset d;
  d.name = "camvid:" + r.filename().string() + "/" + split;
  d.void_label = void_label;
  if (num_classes == 11) {
    d.classes = camvid_class_names();
  } else {
    for (int k = 0; k < num_classes; ++k) d.classes.push_back("class" + std::to_string(k));
  }
  const int64_t N = int64_t(img_paths.size());
  d.ids.resize(size_t(N));
  d.images.resize(size_t(N));
  d.labels.resize(size_t(N));
  FirstError first_error(N);
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t i = 0; i < N; ++i) {
    try {
      const std::string &ip = img_paths[size_t(i)], &lp = lbl_paths[size_t(i)];
      RF_CHECK(fs::is_regular_file(ip), "CamVid: missing image file {} ({} line {})", ip, list.string(), line_of[size_t(i)]);
      RF_CHECK(fs::is_regular_file(lp), "CamVid: missing label file {} ({} line {})", lp, list.string(), line_of[size_t(i)]);
      Image img = decode_image_file(ip);
      std::ifstream lfile(lp, std::ios::binary);
      RF_CHECK(lfile.good(), "CamVid: cannot open label file {}", lp);
      const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(lfile)), std::istreambuf_iterator<char>());
      int LH = 0, LW = 0;
      std::vector<uint8_t> L = read_camvid_label(bytes.data(), bytes.size(), lp, num_classes, void_label, &LH, &LW);
      RF_CHECK(img.H == LH && img.W == LW,
               "CamVid: image {} is {}x{} (HxW) but its label map {} is {}x{}; they must match", ip, img.H, img.W, lp,
               LH, LW);
      d.ids[size_t(i)] = fs::path(ip).stem().string();
      d.images[size_t(i)] = std::move(img);
      d.labels[size_t(i)] = std::move(L);
    } catch (const std::bad_alloc&) {
      first_error.record(i, [&] {
        return fmt::format("CamVid: out of memory loading {} / {} ({} line {})", img_paths[size_t(i)],
                           lbl_paths[size_t(i)], list.string(), line_of[size_t(i)]);
      });
    } catch (const std::exception& e) {
      first_error.record(i, [&] { return std::string(e.what()); });
    }
  }
  first_error.rethrow();
  return d;
}

}  // namespace rf::data
