// Pascal VOC detection layout: root/JPEGImages/<id>.jpg, root/Annotations/<id>.xml, root/ImageSets/Main/
// <split>.txt (one id per line; further tokens on a line, as in the per-class lists, are ignored).
// Boxes: VOC <bndbox> corners are 1-based inclusive pixels, stored as continuous pixels
// x0 = xmin - 1, y0 = ymin - 1, x1 = xmax, y1 = ymax (see BoxAnn). Coordinates may be written as decimals.
// Rules (a warning is kept in DetDataset::warnings and printed once to stderr as "warning: ..."):
//   xmax <= xmin or ymax <= ymin           -> zero-size box, dropped with a warning (file and box named)
//   box partly outside the image           -> clipped to it, with a warning
//   box entirely outside the image         -> dropped with a warning
//   unknown class name (class list given)  -> rf::Error naming the file, the name and the expected list
//   missing <name> / <bndbox> / corner, non-numeric coordinate or <difficult>, malformed XML, missing
//   annotation or image file               -> rf::Error naming the file and the field
//   <size> width/height disagreeing with the decoded image -> rf::Error naming both (a missing <size> or
//   a 0 there, as some VOC tools write, means "use the decoded size")
//   <difficult> is read (default 0).
// Images are decoded and annotations parsed in parallel (OpenMP over images); the first error in split
// order is the one thrown, and warnings come in split order, so the result does not depend on threads.
// The real BCCD archive: train 205 / val 87 / test 72 images of 640x480, classes Platelets, RBC, WBC;
// BloodImage_00338 (val) and BloodImage_00343 (train) each hold one zero-size box.
// Checked by tests/datasets/test_voc.cpp (malformed files written by the test; the real archive when present).
#pragma once
#include <string>
#include <vector>

#include "datasets/dense.h"

namespace rf::data {

// classes empty: the sorted (byte order) set of names found in the split's annotations.
DetDataset load_voc(const std::string& root, const std::string& split,
                    const std::vector<std::string>& classes = {});

// True when root holds Annotations/, JPEGImages/ and ImageSets/Main/.
bool looks_like_voc(const std::string& root);

}  // namespace rf::data
