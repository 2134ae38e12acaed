// CamVid loader; see camvid.h for the layout and the rules.
// Label maps go through the PNG decoder of image_folder.cpp, which expands grayscale to RGB; the three
// channels are checked equal and one is kept (a 480x360 map: ~0.5 MB of extra copying, negligible next to
// the decode). 233 test pairs decode in ~1 s on 2 cores (JPEG 480x360 ~3 ms, PNG ~1 ms).
// Checked by tests/datasets/test_camvid.cpp.
#include "datasets/camvid.h"

#include <omp.h>

#include <filesystem>
#include <fstream>
#include <sstream>

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

SegDataset load_camvid(const std::string& root, const std::string& split, int num_classes, int void_label) {
  RF_CHECK(num_classes >= 1 && num_classes <= 255, "CamVid: num_classes {}, expected 1..255", num_classes);
  RF_CHECK(void_label >= num_classes && void_label <= 255, "CamVid: void label {}, expected {}..255 (not a class)",
           void_label, num_classes);
  const fs::path r(root);
  RF_CHECK(fs::is_directory(r), "CamVid: root {} is not a directory (expected <split>.txt and image folders)", root);
  const fs::path list = r / (split + ".txt");
  std::ifstream lf(list);
  RF_CHECK(lf.good(), "CamVid: missing list file {} (expected lines \"image_path label_path\")", list.string());
  std::vector<std::string> img_paths, lbl_paths;
  std::vector<int> line_of;
  int line_no = 0;
  for (std::string line; std::getline(lf, line);) {
    ++line_no;
    std::istringstream ls(line);
    std::vector<std::string> tok;
    for (std::string t; ls >> t;) tok.push_back(t);
    if (tok.empty()) continue;
    RF_CHECK(tok.size() == 2, "CamVid: {} line {}: '{}' has {} field(s), expected \"image_path label_path\"",
             list.string(), line_no, line, tok.size());
    img_paths.push_back((r / tok[0]).string());
    lbl_paths.push_back((r / tok[1]).string());
    line_of.push_back(line_no);
  }
  RF_CHECK(!img_paths.empty(), "CamVid: list file {} holds no image/label pairs", list.string());

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
  int64_t err_i = N;
  std::string err_msg;
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t i = 0; i < N; ++i) {
    try {
      const std::string &ip = img_paths[size_t(i)], &lp = lbl_paths[size_t(i)];
      RF_CHECK(fs::is_regular_file(ip), "CamVid: missing image file {} ({} line {})", ip, list.string(), line_of[size_t(i)]);
      RF_CHECK(fs::is_regular_file(lp), "CamVid: missing label file {} ({} line {})", lp, list.string(), line_of[size_t(i)]);
      Image img = decode_image_file(ip);
      const Image lab = decode_png_file(lp);
      RF_CHECK(img.H == lab.H && img.W == lab.W,
               "CamVid: image {} is {}x{} (HxW) but its label map {} is {}x{}; they must match", ip, img.H, img.W, lp,
               lab.H, lab.W);
      std::vector<uint8_t> L(size_t(lab.H) * size_t(lab.W));
      for (size_t p = 0; p < L.size(); ++p) {
        const uint8_t* px = lab.hwc.data() + p * 3;
        if (px[0] != px[1] || px[0] != px[2])
          RF_FAIL("CamVid: label map {} has channels that differ at pixel (x={}, y={}): {}, {}, {}; expected an 8-bit "
                  "grayscale label map",
                  lp, p % size_t(lab.W), p / size_t(lab.W), int(px[0]), int(px[1]), int(px[2]));
        const int v = px[0];
        if (v >= num_classes && v != void_label)
          RF_FAIL("CamVid: label map {} has value {} at pixel (x={}, y={}); expected 0..{} or void {}", lp, v,
                  p % size_t(lab.W), p / size_t(lab.W), num_classes - 1, void_label);
        L[p] = uint8_t(v);
      }
      d.ids[size_t(i)] = fs::path(ip).stem().string();
      d.images[size_t(i)] = std::move(img);
      d.labels[size_t(i)] = std::move(L);
    } catch (const std::exception& e) {
#pragma omp critical(rf_camvid_error)
      {
        if (i < err_i) {
          err_i = i;
          err_msg = e.what();
        }
      }
    }
  }
  if (err_i < N) throw Error(err_msg);
  return d;
}

}  // namespace rf::data
