// The .rfpk model package: what the cloud transmits and the device stores (docs/PACKAGE.md has the byte
// table). This file is the container only: bytes <-> Package, with every field validated against the file
// before anything is allocated, so a truncated, corrupted or hostile file gets an rf::Error naming the file,
// the field and what was expected, never a crash or an allocation of attacker-chosen size. The model side
// (model <-> Package, fp16/int8, BN folding, deltas) is host/package/model_package.h.
// Checked by tests/package/test_package.cpp (round trips, every bad input, every byte flipped) and by the
// libFuzzer target fuzz/fuzz_package.cpp (scripts/fuzz.sh).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "host/core/tensor.h"

namespace rf {

// Format versions (docs/PACKAGE.md, "Versions"): 1 = no inference metadata; 2 = version 1 plus the metadata
// block (input size, normalisation, class names) after the seeds. The writer writes the lowest version that holds
// the package (2 only when metadata is present, so packages without it stay byte-identical to older writers');
// the reader accepts both.
constexpr uint16_t kPackageVersion = 2;          // the newest version this reader and writer know
constexpr uint16_t kPackageVersionNoMeta = 1;
constexpr size_t kPackageHeaderBytes = 64, kPackageTrailerBytes = 8, kPackageAlign = 64;
extern const unsigned char kPackageMagic[8];  // "RFPK\r\n\x1a\n"

// Header flags. Unknown bits are an error (a newer writer's feature this reader cannot honour).
enum PackageFlag : uint32_t {
  kPkgZstd = 1u << 0,          // the payload is one zstd frame
  kPkgDelta = 1u << 1,         // an update: tensors marked from_base come from the base package
  kPkgBnFolded = 1u << 2,      // BN merged into the preceding conv (inference package)
  kPkgMaterialized = 1u << 3,  // seeded weights stored as tensors (to compare against seeds)
  kPkgKnownFlags = 0xFu,
};

// Tensor kinds (same order as ParamKind) and storage dtypes (DType codes).
enum class TensorKind : uint8_t { learnable = 0, seeded = 1, state = 2 };
const char* tensor_kind_name(TensorKind k);
bool package_dtype_ok(uint8_t code);  // f32, f16, i8

struct PackedTensor {
  std::string name;
  TensorKind kind = TensorKind::learnable;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  bool from_base = false;      // delta only: no data here, take the base package's tensor of this name
  std::vector<uint8_t> data;   // stored bytes: f32/f16 little-endian values; i8: f32 scale per shape[0], then
                               // the int8 values
  uint64_t offset = 0;         // set by serialize/parse: position of the data in the payload
  int64_t numel() const;
  uint64_t stored_bytes() const;  // what data.size() must be for this dtype and shape
};

// What inference needs besides the weights (format version 2): the input the network was trained on and the
// class names of its outputs. Every field may be absent (0 / empty); a reader must then be told it explicitly.
struct PackageMeta {
  int64_t input_h = 0, input_w = 0;          // network input size in pixels; 0: not recorded
  std::vector<float> mean, std;              // per input channel: x = (pixel / 255 - mean) / std; empty: not recorded
  std::vector<std::string> classes;          // names of outputs 0..n-1 (n <= the config's classes); empty: none
  bool empty() const { return input_h == 0 && input_w == 0 && mean.empty() && std.empty() && classes.empty(); }
};
// Limits of the metadata block (far above any real model; they bound what a hostile file can make us allocate).
constexpr uint32_t kMaxMetaChannels = 16, kMaxMetaClasses = 100000, kMaxClassNameLen = 256;
constexpr int64_t kMaxMetaInputSize = 65536;

struct Package {
  uint16_t version = kPackageVersionNoMeta;  // set by serialize_payload / parse_package
  uint32_t flags = 0;
  std::string config;        // ModelConfig::str()
  std::string seed_rule;     // "base+i"
  uint64_t base_seed = 0;
  std::string generator;     // kGeneratorId
  std::string distribution;  // kDistributionId
  std::vector<uint64_t> seeds;  // one per NL module, network order
  PackageMeta meta;             // version 2 only; empty in version 1
  std::vector<PackedTensor> tensors;
  uint64_t base_payload_hash = 0;    // delta: payload hash of the base it applies to
  uint64_t target_payload_hash = 0;  // delta: payload hash of the full package it rebuilds

  // Filled by serialize_package / parse_package.
  uint64_t payload_hash = 0;    // xxh64 of the uncompressed payload: the content's identity
  uint64_t payload_raw = 0, payload_stored = 0, file_bytes = 0, file_checksum = 0;
  uint64_t table_bytes = 0;     // bytes of the fixed fields + strings + seeds + tensor directory

  bool has(uint32_t f) const { return (flags & f) != 0; }
  const PackedTensor* find(const std::string& name) const;
};

// Generator and distribution identifiers: what a reader must implement to regenerate the seeded weights.
extern const char* const kGeneratorId;     // "philox4x32-10"
extern const char* const kDistributionId;  // "normal(0,sqrt(2/fan_out)):rf-boxmuller-1"

// Payload bytes (uncompressed, canonical: same Package -> same bytes). Sets offsets and table_bytes.
std::vector<uint8_t> serialize_payload(Package& p);
// The whole file: header + payload (zstd-compressed when zstd_level > 0) + checksum. Sets the hash fields.
std::vector<uint8_t> serialize_package(Package& p, int zstd_level = 0);
// Parses and verifies a whole file held in memory. `what` names it in errors (the path).
Package parse_package(const uint8_t* data, size_t size, const std::string& what);
Package read_package(const std::string& path);
// Writes atomically: a temp file "<path>.tmp.<pid>" in the same directory, fsync, rename, directory fsync; then
// removes temp files of `path` left by writers that died (their pid no longer exists). The one writer of every
// package, checkpoint and results file.
void write_package(const std::string& path, Package& p, int zstd_level = 0);
void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes);
std::vector<uint8_t> read_file_bytes(const std::string& path, uint64_t max_bytes);

// Values of a stored tensor as fp32 (dequantised for f16 / i8). Refused, naming `what` (the file) and the tensor:
// a NaN or infinite value, an int8 scale that is not finite and >= 0, an int8 value of -128 (outside the
// writer's symmetric range -127..127).
std::vector<float> decode_tensor(const PackedTensor& t, const std::string& what);

// Where the bytes of a package go (payload sizes are uncompressed; with zstd, stored_payload tells the rest).
struct ByteBreakdown {
  uint64_t header = 0;      // fixed header + trailer checksum
  uint64_t meta = 0;        // config, seed rule, generator ids, counts and the tensor directory
  uint64_t seeds = 0;       // base seed + one u64 per NL module
  uint64_t learnable = 0, state = 0, seeded = 0;  // tensor data (seeded: only with --materialize)
  uint64_t padding = 0;     // 64-byte alignment of tensor data
  uint64_t payload_raw = 0, payload_stored = 0, file = 0;
};
ByteBreakdown package_breakdown(const Package& p);

}  // namespace rf
