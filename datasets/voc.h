// Pascal VOC detection layout: root/JPEGImages/<id>.jpg, root/Annotations/<id>.xml, root/ImageSets/Main/
// <split>.txt (one id per line; further tokens on a line, as in the per-class lists, are ignored).
// Boxes: VOC <bndbox> corners are 1-based inclusive pixels, stored as continuous pixels
// x0 = xmin - 1, y0 = ymin - 1, x1 = xmax, y1 = ymax (see BoxAnn). Coordinates may be written as decimals.
// Numbers: coordinates are non-negative decimals (digits, optional '.' fraction); <size> and <difficult>
// non-negative integers. Anything else ("0x40", "1e2", "-3", "12abc", "inf", " 1 2") is an rf::Error naming
// the file, the object, the field and the text.
// Rules (a warning is kept in DetDataset::warnings and printed once to stderr as "warning: ..."):
//   xmin > xmax or ymin > ymax (inverted)  -> rf::Error (file, object, fields, values)
//   xmax == xmin or ymax == ymin           -> zero-size box, dropped with a warning (file and box named): the
//                                             real BCCD archive holds two such boxes (see below)
//   xmax > image width or ymax > height    -> rf::Error (the annotation does not fit its image)
//   xmin or ymin = 0 (0-based writers)     -> clipped to the image, with a warning
//   class name not in the class list       -> rf::Error naming the file, the name and the expected list
//   missing <name> / <bndbox> / corner, malformed XML, missing annotation or image file
//                                          -> rf::Error naming the file and the field
//   <size> width/height disagreeing with the decoded image -> rf::Error naming both (a missing <size> or
//   a 0 there, as some VOC tools write, means "use the decoded size")
//   <difficult> is read (default 0).
// The class list: the one given; else root/classes.txt (one name per line, '#' comments) when present;
// else the names found in the annotations of the train / val / test splits present (and the split loaded),
// sorted; then a name found in only one of two or more splits, or two names differing only in case, is an
// error (a typo must not become a class; a real class that occurs in one split only goes in classes.txt).
// Split lists: an image id listed twice, or one that is absolute or leaves the root ("../x"), is an error
// naming the list file and line; so is an annotation <filename> leaving JPEGImages/.
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

// classes empty: voc_class_names(root, split).
DetDataset load_voc(const std::string& root, const std::string& split,
                    const std::vector<std::string>& classes = {});

// The class list when none is given (see above).
std::vector<std::string> voc_class_names(const std::string& root, const std::string& split);

// In-memory entry points (the loader uses them; so does fuzz/fuzz_voc.cpp). `file` / `list` name the source
// in errors. Coordinates are kept as written (c[] parsed, text[] verbatim); the image-dependent rules are
// the loader's.
struct VocObject {
  std::string name;
  double c[4] = {0, 0, 0, 0};  // xmin, ymin, xmax, ymax as written
  std::string text[4];
  bool difficult = false;
};
struct VocAnnotation {
  std::string xml, filename;   // the file, and its <filename> field ("" when absent)
  int size_w = 0, size_h = 0;  // <size>; 0: not given
  std::vector<VocObject> objects;
};
VocAnnotation parse_voc_annotation(const char* text, size_t size, const std::string& file);
// The ids of a split list's text (blank lines skipped, tokens after the first ignored), checked for
// duplicates and root escapes.
std::vector<std::string> parse_voc_list(const std::string& text, const std::string& list, const std::string& root);

// True when root holds Annotations/, JPEGImages/ and ImageSets/Main/.
bool looks_like_voc(const std::string& root);

}  // namespace rf::data
