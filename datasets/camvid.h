// CamVid segmentation layout (SegNet version): root/<split>.txt lists "image_path label_path" pairs relative
// to root (e.g. "test/0001TP_008550.jpg testannot/0001TP_008550.png"); images are JPEG or PNG, labels are
// PNG label maps read exactly as stored (decode_label_png_memory in image_folder.h): 8-bit (or 1/2/4-bit)
// grayscale, palette indices (not colours), or 8-bit RGB whose three channels agree everywhere; 16-bit or
// alpha label PNGs are refused. Values 0..num_classes-1 are classes, void_label is ignored; any other value
// is an error.
// Errors (rf::Error): missing list file, a line that is not exactly two paths (file and line number named),
// an absolute path or one leaving the root ("..") in the list, an image or label listed twice (both lines
// named), missing or undecodable file, an image above the pixel limit, image/label size mismatch (both files
// and sizes named), a label value out of range (file, value and pixel position named), a label PNG that is
// not single-channel 8-bit.
// Decoding is OpenMP over pairs; the first error in list order is thrown (thread-count independent).
// Real archive: 367 train / 101 val / 233 test pairs of 480x360, classes Sky Building Pole Road Pavement
// Tree SignSymbol Fence Car Pedestrian Bicyclist, void 11.
// Checked by tests/datasets/test_camvid.cpp (malformed cases written by the test; the real archive).
#pragma once
#include <string>
#include <vector>

#include "datasets/dense.h"

namespace rf::data {

// The 11 CamVid class names in label order.
const std::vector<std::string>& camvid_class_names();

// classes: camvid_class_names() when num_classes == 11, else "class0", "class1", ...
SegDataset load_camvid(const std::string& root, const std::string& split, int num_classes = 11, int void_label = 11);

// The pairs of a list file's text (in-memory entry point; `list` names the file in errors), paths resolved
// under root and checked as described above (escape, duplicates, field count).
struct CamVidPair {
  std::string image, label;
  int line = 0;
};
std::vector<CamVidPair> parse_camvid_list(const std::string& text, const std::string& list, const std::string& root);

// The label values of a PNG label map (bytes of a .png; `what` names it), each checked to be a class
// (0..num_classes-1) or void_label. H and W get the map's size.
std::vector<uint8_t> read_camvid_label(const uint8_t* data, size_t size, const std::string& what, int num_classes,
                                       int void_label, int* H, int* W);

// True when root holds train.txt and a train/ folder.
bool looks_like_camvid(const std::string& root);

}  // namespace rf::data
