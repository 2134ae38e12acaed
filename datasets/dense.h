// Dense-prediction datasets (detection and semantic segmentation) held in memory, and the augmentation
// that keeps images, boxes and label maps consistent.
// Images are decoded once into interleaved HWC RGB uint8 (Image from image_folder.h); sizes may differ
// between images. Boxes are continuous pixel coordinates: pixel (x, y) covers [x, x+1) x [y, y+1), so a box
// [x0, x1) x [y0, y1) holds the pixels x0 <= x < x1 when the corners are integers (x1, y1 exclusive).
// Augmentation (training): the image is first given the output size by a plain resize (as in evaluation),
// then scaled by a random s in [scale_min, scale_max] (bilinear for the image, nearest for the label map),
// cropped at a random out_h x out_w window (padded with the mean colour / the void label where the scaled
// image is smaller), and flipped horizontally at random. Every random choice is a function of
// (seed, epoch, index) through Philox (datasets/rng.h), so batches do not depend on thread counts.
// Checked by tests/datasets/test_dense_augment.cpp (mask/box consistency after augmentation, flip twice =
// identity, disabled = resize_bilinear, determinism, drop rules) and the loaders' tests.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/image_codec.h"

namespace rf::data {

struct BoxAnn {
  float x0 = 0, y0 = 0, x1 = 0, y1 = 0;  // continuous pixels, x1/y1 exclusive
  int32_t cls = 0;
  bool difficult = false;
  float width() const { return x1 - x0; }
  float height() const { return y1 - y0; }
  float area() const { return (x1 > x0 && y1 > y0) ? (x1 - x0) * (y1 - y0) : 0.0f; }
};

// Detection set. Content hash: 64-bit FNV-1a (as Dataset's) over, in this order: the image count as int64
// little-endian; then per image: H, W, C as int64 LE, the HWC pixel bytes, the box count as int64 LE, and
// per box x0, y0, x1, y1 as the IEEE-754 bit patterns of the floats (uint32 LE), cls as int32 LE and
// difficult as one byte. Names, ids, class names and warnings are not hashed.
struct DetDataset {
  std::string name;
  std::vector<std::string> classes;
  std::vector<std::string> ids;                // e.g. the VOC image id, "synthetic:17"
  std::vector<Image> images;                   // HWC RGB uint8, sizes may differ
  std::vector<std::vector<BoxAnn>> boxes;      // per image
  std::vector<std::string> warnings;           // what the loader dropped or clipped, one line each

  int64_t size() const { return int64_t(images.size()); }
  int num_classes() const { return int(classes.size()); }
  int64_t num_boxes() const;
  // Throws rf::Error naming the dataset, the image and the field when sizes, boxes or classes are off.
  void validate() const;
  uint64_t content_hash() const;
  std::string hash_hex() const;  // "fnv1a64:0123456789abcdef"
};

// Segmentation set. labels[i] holds H*W bytes (row-major) for image i, each in [0, num_classes()) or
// void_label (ignored by the loss and the metric). Content hash: FNV-1a over the image count and
// void_label as int64 LE, then per image H, W, C as int64 LE, the HWC pixel bytes, and the H*W label bytes.
struct SegDataset {
  std::string name;
  std::vector<std::string> classes;
  int void_label = 255;
  std::vector<std::string> ids;
  std::vector<Image> images;
  std::vector<std::vector<uint8_t>> labels;  // H*W per image
  std::vector<std::string> warnings;

  int64_t size() const { return int64_t(images.size()); }
  int num_classes() const { return int(classes.size()); }
  void validate() const;
  uint64_t content_hash() const;
  std::string hash_hex() const;
  std::vector<int64_t> label_histogram() const;  // 256 counts over all label maps
};

struct DenseAugment {
  int out_h = 0, out_w = 0;
  float scale_min = 0.75f, scale_max = 1.25f;  // relative to the plain resize to out_h x out_w
  bool flip = true;
  bool enabled = true;  // false: plain bilinear resize to out_h x out_w, boxes scaled, nothing dropped
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};  // ImageNet statistics, RGB in [0, 1]
  std::array<float, 3> std{0.229f, 0.224f, 0.225f};
  // Drop rules for boxes cut by the crop (enabled only): a box is dropped when its clipped area is below
  // min_visible of its scaled area, or its clipped width or height is below min_side pixels.
  float min_visible = 0.30f;
  float min_side = 2.0f;
};

// The random choices for one sample. The scaled image is Hs x Ws; output pixel (y, x) reads scaled pixel
// (y' + crop_y, x' + crop_x) with x' = out_w-1-x when flip, else x; negative offsets (scaled image smaller
// than the output) place it at a random position inside the padded output.
struct DenseAugParams {
  int Hs = 0, Ws = 0;
  int crop_y = 0, crop_x = 0;
  bool flip = false;
};

// Philox block (seed; counter index, epoch, kTagDenseAugment): s = scale_min + (scale_max - scale_min) * u(x),
// Hs = max(1, round(out_h * s)), Ws = max(1, round(out_w * s)); crop_y uniform over the possible offsets from
// word y (0..Hs-out_h when Hs >= out_h, else Hs-out_h..0), crop_x likewise from word z, flip = hflip && (w & 1).
// Disabled: Hs = out_h, Ws = out_w, no crop, no flip. The image size does not enter, so a detection and a
// segmentation view of one image get the same transform.
DenseAugParams dense_augment_params(const DenseAugment& a, uint64_t seed, int64_t epoch, int64_t index);

// One transformed sample: an out_h x out_w image (HWC uint8), boxes in output pixels, label map (empty when
// no label was given).
struct DenseSample {
  Image image;
  std::vector<BoxAnn> boxes;
  std::vector<uint8_t> label;
};

// The transform itself. boxes and label may be null. Image: bilinear (align_corners = false, edge clamp,
// the arithmetic of resize_bilinear, so the disabled case equals resize_bilinear byte for byte), padding =
// round(255 * mean). Label: nearest (source row = floor((y + 0.5) * H / Hs)), padding = void_label.
// Boxes: scaled by Ws / W and Hs / H, shifted by the crop, mirrored (x -> out_w - x), clipped to the output;
// the drop rules apply when a.enabled.
DenseSample apply_dense_augment(const Image& img, const std::vector<BoxAnn>* boxes, const std::vector<uint8_t>* label,
                                int void_label, const DenseAugParams& p, const DenseAugment& a);

// Sample `index` of a dataset under (seed, epoch).
DenseSample augment_det(const DetDataset& d, int64_t index, const DenseAugment& a, uint64_t seed, int64_t epoch);
DenseSample augment_seg(const SegDataset& d, int64_t index, const DenseAugment& a, uint64_t seed, int64_t epoch);

// Mirrors a sample in place (image columns, label columns, boxes x -> W - x). Twice = identity.
void hflip_sample(DenseSample& s);

struct DenseBatch {
  int64_t N = 0, H = 0, W = 0;
  std::vector<float> x;                       // (N, 3, H, W), (v / 255 - mean) / std
  std::vector<std::vector<BoxAnn>> boxes;     // detection: per image, output pixels
  std::vector<uint8_t> labels;                // segmentation: (N, H, W), void where padded; empty for detection
  std::vector<int64_t> index;                 // dataset indices of the N samples
};

// Batches of the samples at `indices` (in that order), OpenMP over images; the first failing sample (lowest
// position) is rethrown. A function of (dataset, indices, augment, seed, epoch) only.
DenseBatch make_det_batch(const DetDataset& d, const std::vector<int64_t>& indices, const DenseAugment& a,
                          uint64_t seed, int64_t epoch);
DenseBatch make_seg_batch(const SegDataset& d, const std::vector<int64_t>& indices, const DenseAugment& a,
                          uint64_t seed, int64_t epoch);

// A relative path read from a dataset list file (CamVid pairs, VOC ids), resolved under root. Refused with an
// rf::Error naming the list file, its line, the field and the value: an empty path, an absolute path, and a
// path whose lexically normal form leaves root (e.g. "../x", "a/../../x"). Symbolic links are not followed
// (the check is lexical). Returns root / rel.
std::string resolve_list_path(const std::string& root, const std::string& rel, const std::string& list, int line,
                              const char* field);

// Prints each warning once to stderr as "warning: <text>" (the loaders call it).
void print_warnings(const std::vector<std::string>& warnings);

}  // namespace rf::data
