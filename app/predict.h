// `reframe predict`'s core, apart from the command so tests can run it against the engine's own forward pass:
// image files (JPEG/PNG, by content) -> the normalised input tensor the package's network expects.
// Layering: application code (app/) may use datasets; the package library (host/package) does not, which is
// why this lives here and not beside the package reader.
// Checked by tests/package/test_predict.cpp (predict's argmax = the engine's forward argmax on the same images,
// size mismatch refused, resize, folders) and tests/package/cli_package.sh (the command end to end).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "host/core/tensor.h"
#include "host/package/package.h"

namespace rf {

// How an image becomes network input: x[c] = (pixel[c] / 255 - mean[c]) / std[c], in float, exactly as the
// trainer's loaders compute it (datasets/loader.h's NormalizeLut), so predict and eval see the same numbers.
struct PredictInput {
  int64_t H = 0, W = 0;           // network input size
  std::vector<float> mean, std;   // one per channel (3: RGB)
  bool resize = false;            // false: an image of another size is an error; true: bilinear resize to H x W
};

// The arguments as a list of image files: a file is taken as given (whatever its extension: decoding checks the
// content); a folder contributes every *.jpg / *.jpeg / *.png below it (recursively, case-insensitive extension,
// hidden entries skipped), sorted by path. Errors: a path that does not exist; a folder without images.
std::vector<std::string> collect_image_files(const std::vector<std::string>& args);

// Decodes `files` (in order) into one normalised (N, 3, H, W) f32 tensor. Errors name the file: undecodable,
// or (without resize) of another size than H x W.
// sizes (optional): each image's original height and width, before any resize.
Tensor load_image_batch(const std::vector<std::string>& files, const PredictInput& in,
                        std::vector<std::pair<int, int>>* sizes = nullptr);

// Command-line overrides of a package's inference metadata ("" keeps the field): size "S" or "HxW"; mean and
// std "R,G,B" (pixel scale 0..1); classes "a,b,c" or "@FILE" (one name a line). `cmd` names the command in
// errors, e.g. "predict: --mean '0.5,x': ...".
void apply_meta_options(PackageMeta& m, const std::string& size, const std::string& mean, const std::string& std,
                        const std::string& classes, const char* cmd);

// f32 values as JSON numbers with their shortest decimal form (0.4914, not 0.49140000343322754).
std::vector<double> json_floats(const std::vector<float>& v);

// Softmax of one row of logits, in double (stable: max subtracted first).
std::vector<double> softmax(const float* logits, int64_t K);

}  // namespace rf
