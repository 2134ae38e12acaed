// The regenerated model as a standard ONNX graph (`reframe export --onnx`): every model the suite builds
// (ResNet-18, NL-ResNet-18 dw/512/768, the detection and segmentation models) written with libonnx's protobuf
// classes (Debian libonnx-dev), checked by onnx::checker before the file is written atomically.
// ONNX has no Philox, so the seeded weights become initializers: the file is larger than the package, and
// OnnxExport says by how much. fp16/int8 packages export the dequantised weights load_model made of them.
// The graph, opset 17 (what libonnx 1.12's checker knows; ONNX Runtime runs it):
//   conv   Conv (+ BatchNormalization, Relu)        NL module  Conv(group) + Relu | MaxPool | Split ->
//   block  ... Add, Relu                                        AveragePool(count_include_pad=1) -> Concat
//   head   GlobalAveragePool, Flatten, Gemm                     (- x at stride 1: Sub) -> Concat -> Conv(group)
//   dense  1x1 laterals, Resize(linear, half_pixel)             -> Reshape/Transpose/Reshape (channel shuffle)
// The batch dimension stays symbolic ("N"); height and width are fixed at export. Input "input" takes the
// normalised image ((pixel/255 - mean) / std, the metadata says which); output "logits" (classify: (N,
// classes); segment: (N, classes, H, W)) or "heads" (detect: (N, classes + 4, H/8, W/8)).
// Checked by tests/export/onnx_runtime.sh (every model kind against ONNX Runtime, fp32/fp16/int8/folded) and
// tests/export/cli_export.sh (errors).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "host/models/model.h"
#include "host/package/package.h"

namespace rf {

// Whether this build has libonnx (CMake found it); without it export_onnx throws, saying so.
bool onnx_export_available();

struct OnnxExportOptions {
  int64_t input_h = 0, input_w = 0;  // 0: the package's metadata, else 32 (cifar stem) / 224 (large stem)
  std::string source;                // the package's path (recorded in the metadata)
};

struct OnnxExport {
  std::vector<uint8_t> bytes;        // the serialised ModelProto, already checked
  int64_t input_h = 0, input_w = 0;
  int nodes = 0, initializers = 0;
  uint64_t initializer_bytes = 0;    // fp32 weights, seeded ones included
  uint64_t seeded_bytes = 0;         // of those, the regenerated seeded weights (the package carries seeds)
  std::string input_name, output_name;
};

// The ONNX graph of `m` (loaded from package `p` by load_model), checked by onnx::checker. Errors name
// o.source and what failed.
OnnxExport export_onnx(Model& m, const Package& p, const OnnxExportOptions& o);

}  // namespace rf
