// Model <-> package: what `reframe pack`, `run` and `apply` do with a Model. Learnable tensors are stored as
// fp32, fp16 or int8 (symmetric, one fp32 scale per output channel = per row of dim 0); BN state and 1-D
// learnable tensors (biases, BN gamma/beta) stay fp32 under int8 (their bytes are negligible, their precision
// is not). Seeded weights travel as seeds, or as tensors with `materialize`. BN folding merges each BN into the
// conv before it (exact in real arithmetic, a few ulp in float). Deltas carry only the changed tensors.
// Checked by tests/package/test_package.cpp (bit-identical fp32 round trip, measured fp16/int8 and folding
// error, deltas and wrong bases).
#pragma once
#include <memory>
#include <string>

#include "host/models/model.h"
#include "host/package/package.h"

namespace rf {

struct PackOptions {
  DType dtype = DType::f32;  // f32 | f16 | i8 for learnable tensors
  int zstd_level = 0;        // 0: no compression; 1..19 zstd level
  bool fold_bn = false;      // inference package: BN merged into the preceding conv
  bool materialize = false;  // store the seeded weights as tensors instead of only their seeds
};

// Parses "f32" | "fp32" | "f16" | "fp16" | "int8" | "i8".
DType parse_storage_dtype(const std::string& s);

// The model's config, seeds and tensors as a Package (not yet written).
Package pack_model(Model& m, const PackOptions& o);

// Builds the model a full (non-delta) package describes and loads its tensors. Seeded weights are
// regenerated from the seeds (timed into *regen_seconds when given) unless the package is materialised.
// `what` (the file name) prefixes every error.
std::unique_ptr<Model> load_model(const Package& p, const std::string& what, double* regen_seconds = nullptr);

// The delta that turns `base` into `target` (both full packages): tensors whose dtype, shape or bytes differ
// are stored, the rest are marked from_base. Carries both payload hashes.
Package make_delta(const Package& base, const Package& target);
// base + delta -> the full target, verified against the delta's target hash. Errors name both files.
Package apply_delta(const Package& base, const Package& delta, const std::string& base_what,
                    const std::string& delta_what);

// Seeded weights of a config's NL modules (what the seeds stand for), computed from the config alone.
int64_t seeded_values(const ModelConfig& cfg);

// The running_var that makes an eval BN an exact identity in this engine (scale 1.0f exactly): what a folded
// package's BNs get.
float bn_identity_var();

}  // namespace rf
