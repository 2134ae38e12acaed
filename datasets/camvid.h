// CamVid segmentation layout (SegNet version): root/<split>.txt lists "image_path label_path" pairs relative
// to root (e.g. "test/0001TP_008550.jpg testannot/0001TP_008550.png"); images are JPEG or PNG, labels are
// 8-bit PNG label maps (grayscale; an RGB or palette file is accepted only when its three channels are
// equal everywhere). Values 0..num_classes-1 are classes, void_label is ignored; any other value is an error.
// Errors (rf::Error): missing list file, a line that is not exactly two paths (file and line number named),
// missing or undecodable file, image/label size mismatch (both files and sizes named), a label value out of
// range (file, value and pixel position named), a label PNG whose channels differ.
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

// True when root holds train.txt and a train/ folder.
bool looks_like_camvid(const std::string& root);

}  // namespace rf::data
