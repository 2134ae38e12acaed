// .rfpk reader and writer (layout: docs/PACKAGE.md). The reader trusts nothing: the file size is checked against
// the header before the payload is touched, the checksum before anything is decompressed or parsed, the zstd
// frame's declared size against the header and a ratio cap before the output buffer is allocated, and every
// count, string length, shape and offset against the bytes that remain. Tests: tests/package/test_package.cpp;
// fuzzing: fuzz/fuzz_package.cpp.
#include "host/package/package.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "host/core/enum_name.h"
#include "host/package/fp16.h"
#include "host/package/xxhash64.h"

namespace rf {

const unsigned char kPackageMagic[8] = {'R', 'F', 'P', 'K', '\r', '\n', 0x1A, '\n'};
const char* const kGeneratorId = "philox4x32-10";
const char* const kDistributionId = "normal(0,sqrt(2/fan_out)):rf-boxmuller-1";

namespace {

// Limits that no real package reaches; they stop a lying header before any allocation.
constexpr uint64_t kMaxPayload = uint64_t(4) << 30;  // 4 GiB uncompressed
constexpr uint64_t kMaxZstdRatio = 1024;             // raw <= 1024 * stored + 1 MiB
constexpr uint32_t kMaxConfigLen = 4096, kMaxIdLen = 256, kMaxNameLen = 1024;
constexpr int kMaxDims = Shape::kMaxDims;
constexpr int64_t kMaxDim = int64_t(1) << 31;

// Local formatting helpers (the reader links without tensor.cpp, so the fuzzer builds from a few files).
std::string shape_str(const std::vector<int64_t>& d) {
  std::string s = "(";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + (d.size() == 1 ? ",)" : ")");
}
const char* dtype_str(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f16: return "f16";
    case DType::i8: return "i8";
    default: return "unsupported";
  }
}

#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
constexpr bool kFuzzing = true;
#else
constexpr bool kFuzzing = false;
#endif

uint64_t align_up(uint64_t x) { return (x + kPackageAlign - 1) / kPackageAlign * kPackageAlign; }

// Little-endian writer.
struct Writer {
  std::vector<uint8_t> b;
  void u8(uint8_t v) { b.push_back(v); }
  void u16(uint16_t v) { put(v, 2); }
  void u32(uint32_t v) { put(v, 4); }
  void u64(uint64_t v) { put(v, 8); }
  void put(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) b.push_back(uint8_t(v >> (8 * i)));
  }
  void str32(const std::string& s) {
    u32(uint32_t(s.size()));
    b.insert(b.end(), s.begin(), s.end());
  }
  void pad_to(uint64_t n) { b.resize(n, 0); }
};

void store_le(uint8_t* p, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) p[i] = uint8_t(v >> (8 * i));
}
float get_f32(const uint8_t* in) {
  const uint32_t u = uint32_t(in[0]) | uint32_t(in[1]) << 8 | uint32_t(in[2]) << 16 | uint32_t(in[3]) << 24;
  float v;
  std::memcpy(&v, &u, 4);
  return v;
}
uint64_t load_le(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Bounded little-endian reader: every read names the field it is reading in its error.
struct Reader {
  const uint8_t* p;
  uint64_t n, pos = 0;
  const std::string& what;
  std::string where;  // "payload", "tensor 3 'layer1.0.bn1.weight'"

  uint64_t left() const { return n - pos; }
  void need(uint64_t k, const char* field) const {
    if (k > left())
      RF_FAIL("{}: {} field '{}' needs {} bytes at payload offset {}, but only {} remain (truncated or corrupt)",
              what, where, field, k, pos, left());
  }
  uint64_t get(int k, const char* field) {
    need(uint64_t(k), field);
    uint64_t v = load_le(p + pos, k);
    pos += uint64_t(k);
    return v;
  }
  std::string str(int len_bytes, uint32_t max_len, const char* field) {
    uint64_t len = get(len_bytes, field);
    if (len > max_len)
      RF_FAIL("{}: {} field '{}' has length {}, expected at most {}", what, where, field, len, max_len);
    need(len, field);
    std::string s(reinterpret_cast<const char*>(p + pos), size_t(len));
    pos += len;
    return s;
  }
};

}  // namespace

const char* tensor_kind_name(TensorKind k) {
  static constexpr const char* kNames[] = {"learnable", "seeded", "state"};  // TensorKind codes 0, 1, 2
  return enum_name(k, kNames);
}

bool package_dtype_ok(uint8_t code) {
  return code == uint8_t(DType::f32) || code == uint8_t(DType::f16) || code == uint8_t(DType::i8);
}

int64_t PackedTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

uint64_t PackedTensor::stored_bytes() const {
  if (from_base) return 0;
  const uint64_t n = uint64_t(numel());
  switch (dtype) {
    case DType::f32: return 4 * n;
    case DType::f16: return 2 * n;
    case DType::i8: return 4 * uint64_t(shape.empty() ? 1 : shape[0]) + n;
    default: RF_FAIL("tensor '{}': dtype {} cannot be stored in a package (expected f32, f16 or i8)", name,
                     dtype_str(dtype));
  }
}

const PackedTensor* Package::find(const std::string& name) const {
  for (const PackedTensor& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

namespace {

// Checks what the reader checks, so the writer never writes a block the reader refuses. `what` prefixes errors.
void check_meta(const PackageMeta& m, const std::string& what) {
  if (m.input_h < 0 || m.input_w < 0 || m.input_h > kMaxMetaInputSize || m.input_w > kMaxMetaInputSize ||
      (m.input_h == 0) != (m.input_w == 0))
    RF_FAIL("{}: metadata field 'input_h'/'input_w' is {}x{}, expected both 1..{} or both 0 (not recorded)", what,
            m.input_h, m.input_w, kMaxMetaInputSize);
  if (m.mean.size() != m.std.size() || m.mean.size() > kMaxMetaChannels)
    RF_FAIL("{}: metadata fields 'mean'/'std' have {}/{} values, expected the same count, at most {}", what,
            m.mean.size(), m.std.size(), kMaxMetaChannels);
  for (size_t c = 0; c < m.mean.size(); ++c) {
    if (!std::isfinite(m.mean[c]))
      RF_FAIL("{}: metadata field 'mean' value {} is {}, expected a finite number", what, c, m.mean[c]);
    if (!std::isfinite(m.std[c]) || !(m.std[c] > 0.f))
      RF_FAIL("{}: metadata field 'std' value {} is {}, expected a finite number > 0", what, c, m.std[c]);
  }
  if (m.classes.size() > kMaxMetaClasses)
    RF_FAIL("{}: metadata field 'class_count' is {}, expected at most {}", what, m.classes.size(), kMaxMetaClasses);
  for (size_t k = 0; k < m.classes.size(); ++k)
    if (m.classes[k].empty() || m.classes[k].size() > kMaxClassNameLen)
      RF_FAIL("{}: metadata class name {} is {} bytes, expected 1..{}", what, k, m.classes[k].size(),
              kMaxClassNameLen);
}

void write_meta(Writer& w, const PackageMeta& m) {
  check_meta(m, "package");
  w.u32(uint32_t(m.input_h));
  w.u32(uint32_t(m.input_w));
  w.u32(uint32_t(m.mean.size()));
  for (const std::vector<float>* v : {&m.mean, &m.std})
    for (float x : *v) {
      uint32_t u;
      std::memcpy(&u, &x, 4);
      w.u32(u);
    }
  w.u32(uint32_t(m.classes.size()));
  for (const std::string& c : m.classes) {
    w.u16(uint16_t(c.size()));
    w.b.insert(w.b.end(), c.begin(), c.end());
  }
}

}  // namespace

std::vector<uint8_t> serialize_payload(Package& p) {
  // Write only what the reader accepts back.
  RF_CHECK(p.config.size() <= kMaxConfigLen, "package config: {} bytes, expected at most {}", p.config.size(),
           kMaxConfigLen);
  for (const std::string* s : {&p.seed_rule, &p.generator, &p.distribution})
    RF_CHECK(s->size() <= kMaxIdLen, "package identifier '{}': {} bytes, expected at most {}", *s, s->size(),
             kMaxIdLen);
  RF_CHECK(p.seeds.size() < (uint64_t(1) << 32) && p.tensors.size() < (uint64_t(1) << 32),
           "package: {} seeds, {} tensors (expected fewer than 2^32)", p.seeds.size(), p.tensors.size());
  Writer w;
  w.str32(p.config);
  w.str32(p.seed_rule);
  w.u64(p.base_seed);
  w.str32(p.generator);
  w.str32(p.distribution);
  w.u32(uint32_t(p.seeds.size()));
  for (uint64_t s : p.seeds) w.u64(s);
  // Version 2: the metadata block, written only when there is metadata (docs/PACKAGE.md, "Versions").
  p.version = p.meta.empty() ? kPackageVersionNoMeta : kPackageVersion;
  if (p.version >= 2) write_meta(w, p.meta);
  w.u32(uint32_t(p.tensors.size()));
  // The directory first (offsets are known from the sizes alone), then the aligned data blocks.
  uint64_t dir_bytes = 0;
  for (const PackedTensor& t : p.tensors) dir_bytes += 2 + t.name.size() + 4 + 8 * t.shape.size() + 16;
  uint64_t at = align_up(w.b.size() + dir_bytes);
  for (PackedTensor& t : p.tensors) {
    RF_CHECK(!t.name.empty() && t.name.size() <= kMaxNameLen, "package tensor name '{}': expected 1..{} bytes",
             t.name, kMaxNameLen);
    RF_CHECK(!t.shape.empty() && int(t.shape.size()) <= kMaxDims, "package tensor '{}': {} dims, expected 1..{}",
             t.name, t.shape.size(), kMaxDims);
    RF_CHECK(t.data.size() == t.stored_bytes(), "package tensor '{}': {} data bytes, expected {} for {} {}", t.name,
             t.data.size(), t.stored_bytes(), dtype_str(t.dtype), shape_str(t.shape));
    w.u16(uint16_t(t.name.size()));
    w.b.insert(w.b.end(), t.name.begin(), t.name.end());
    w.u8(uint8_t(t.kind));
    w.u8(uint8_t(t.dtype));
    w.u8(uint8_t(t.shape.size()));
    w.u8(t.from_base ? 1 : 0);
    for (int64_t d : t.shape) w.u64(uint64_t(d));
    t.offset = at;
    w.u64(at);
    w.u64(t.data.size());
    at = align_up(at + t.data.size());
  }
  p.table_bytes = w.b.size();
  for (const PackedTensor& t : p.tensors) {
    w.pad_to(t.offset);
    w.b.insert(w.b.end(), t.data.begin(), t.data.end());
  }
  if (p.tensors.empty()) w.pad_to(align_up(w.b.size()));
  p.payload_raw = w.b.size();
  p.payload_hash = xxhash64(w.b.data(), w.b.size());
  return std::move(w.b);
}

std::vector<uint8_t> serialize_package(Package& p, int zstd_level) {
  std::vector<uint8_t> payload = serialize_payload(p);
  if (zstd_level > 0) {
    p.flags |= kPkgZstd;
    std::vector<uint8_t> z(ZSTD_compressBound(payload.size()));
    size_t got = ZSTD_compress(z.data(), z.size(), payload.data(), payload.size(), zstd_level);
    RF_CHECK(!ZSTD_isError(got), "zstd compression failed: {}", ZSTD_getErrorName(got));
    z.resize(got);
    payload.swap(z);
  } else {
    p.flags &= ~uint32_t(kPkgZstd);
  }
  p.payload_stored = payload.size();
  std::vector<uint8_t> out(kPackageHeaderBytes + payload.size() + kPackageTrailerBytes, 0);
  std::memcpy(out.data(), kPackageMagic, 8);
  store_le(&out[8], p.version, 2);
  store_le(&out[10], kPackageHeaderBytes, 2);
  store_le(&out[12], p.flags, 4);
  store_le(&out[16], p.payload_stored, 8);
  store_le(&out[24], p.payload_raw, 8);
  store_le(&out[32], p.payload_hash, 8);
  store_le(&out[40], p.base_payload_hash, 8);
  store_le(&out[48], p.target_payload_hash, 8);
  if (!payload.empty()) std::memcpy(out.data() + kPackageHeaderBytes, payload.data(), payload.size());
  p.file_checksum = xxhash64(out.data(), out.size() - kPackageTrailerBytes);
  store_le(out.data() + out.size() - kPackageTrailerBytes, p.file_checksum, 8);
  p.file_bytes = out.size();
  return out;
}

namespace {

void parse_payload(const uint8_t* data, uint64_t n, Package& p, const std::string& what) {
  Reader r{data, n, 0, what, "payload"};
  p.config = r.str(4, kMaxConfigLen, "config");
  p.seed_rule = r.str(4, kMaxIdLen, "seed_rule");
  p.base_seed = r.get(8, "base_seed");
  p.generator = r.str(4, kMaxIdLen, "generator");
  p.distribution = r.str(4, kMaxIdLen, "distribution");
  const uint64_t n_seeds = r.get(4, "seed_count");
  if (n_seeds * 8 > r.left())
    RF_FAIL("{}: payload field 'seed_count' says {} seeds ({} bytes), but only {} bytes remain", what, n_seeds,
            n_seeds * 8, r.left());
  p.seeds.resize(size_t(n_seeds));
  for (uint64_t& s : p.seeds) s = r.get(8, "seed");
  if (p.version >= 2) {
    r.where = "metadata";
    PackageMeta& m = p.meta;
    m.input_h = int64_t(r.get(4, "input_h"));
    m.input_w = int64_t(r.get(4, "input_w"));
    const uint64_t n_ch = r.get(4, "channels");
    if (n_ch > kMaxMetaChannels)
      RF_FAIL("{}: metadata field 'channels' is {}, expected at most {}", what, n_ch, kMaxMetaChannels);
    for (std::vector<float>* v : {&m.mean, &m.std}) {
      v->resize(size_t(n_ch));
      for (float& x : *v) {
        const uint32_t u = uint32_t(r.get(4, v == &m.mean ? "mean" : "std"));
        std::memcpy(&x, &u, 4);
      }
    }
    const uint64_t n_cls = r.get(4, "class_count");
    // Each name needs at least 3 bytes (u16 length + 1 byte): checked before the vector is sized.
    if (n_cls > kMaxMetaClasses || n_cls * 3 > r.left())
      RF_FAIL("{}: metadata field 'class_count' is {}, expected at most {} and at most {} (3 bytes a name in the {} "
              "bytes that remain)", what, n_cls, kMaxMetaClasses, r.left() / 3, r.left());
    m.classes.resize(size_t(n_cls));
    for (std::string& c : m.classes) c = r.str(2, kMaxClassNameLen, "class_name");
    check_meta(m, what);
    r.where = "payload";
  }
  const uint64_t n_tensors = r.get(4, "tensor_count");
  // Smallest directory entry: 2 (name length) + 1 (name) + 4 + 8 (one dim) + 16 = 31 bytes.
  if (n_tensors * 31 > r.left())
    RF_FAIL("{}: payload field 'tensor_count' says {} tensors (at least {} directory bytes), but only {} bytes "
            "remain", what, n_tensors, n_tensors * 31, r.left());
  p.tensors.resize(size_t(n_tensors));
  // Data blocks must follow the directory in order, each at the next 64-byte boundary: no overlaps, no gaps
  // that could hide data, and one canonical byte string per package.
  uint64_t expect_at = 0;
  std::vector<uint64_t> offsets(p.tensors.size()), sizes(p.tensors.size());
  for (size_t i = 0; i < p.tensors.size(); ++i) {
    PackedTensor& t = p.tensors[i];
    r.where = fmt::format("tensor {}", i);
    t.name = r.str(2, kMaxNameLen, "name");
    if (t.name.empty()) RF_FAIL("{}: tensor {} field 'name' is empty, expected a parameter name", what, i);
    r.where = fmt::format("tensor {} '{}'", i, t.name);
    const uint64_t kind = r.get(1, "kind");
    if (kind > 2) RF_FAIL("{}: {} field 'kind' is {}, expected 0 (learnable), 1 (seeded) or 2 (state)", what,
                          r.where, kind);
    t.kind = TensorKind(kind);
    const uint64_t dtype = r.get(1, "dtype");
    if (!package_dtype_ok(uint8_t(dtype)))
      RF_FAIL("{}: {} field 'dtype' is {} ({}), expected {} (f32), {} (f16) or {} (i8)", what, r.where, dtype,
              dtype <= 7 ? "a known dtype not allowed in packages" : "unknown", int(DType::f32), int(DType::f16), int(DType::i8));
    t.dtype = DType(dtype);
    const uint64_t ndim = r.get(1, "ndim");
    if (ndim < 1 || ndim > uint64_t(kMaxDims))
      RF_FAIL("{}: {} field 'ndim' is {}, expected 1..{}", what, r.where, ndim, kMaxDims);
    const uint64_t tflags = r.get(1, "flags");
    if (tflags > 1) RF_FAIL("{}: {} field 'flags' is {}, expected 0 or 1 (from_base)", what, r.where, tflags);
    t.from_base = tflags == 1;
    if (t.from_base && !p.has(kPkgDelta))
      RF_FAIL("{}: {} is marked from_base, but the package is not a delta", what, r.where);
    t.shape.resize(size_t(ndim));
    uint64_t numel = 1;
    for (int64_t& d : t.shape) {
      const uint64_t v = r.get(8, "shape");
      if (v < 1 || v > uint64_t(kMaxDim))
        RF_FAIL("{}: {} field 'shape' has a dimension of {}, expected 1..{}", what, r.where, v, kMaxDim);
      d = int64_t(v);
      numel *= v;  // each factor < 2^31 and the product is checked at every step: no overflow
      // Stored data needs a byte per value at least; from_base entries live in the base (4 GiB cap).
      const uint64_t cap = t.from_base ? kMaxPayload : n;
      if (numel > cap)
        RF_FAIL("{}: {} shape {} holds more values than {}", what, r.where, shape_str(t.shape),
                t.from_base ? "any package (4 GiB)" : fmt::format("the {}-byte payload", n));
    }
    offsets[i] = r.get(8, "data_offset");
    sizes[i] = r.get(8, "data_bytes");
    if (sizes[i] != t.stored_bytes())
      RF_FAIL("{}: {} field 'data_bytes' is {}, expected {} for {}{} {}", what, r.where, sizes[i], t.stored_bytes(),
              t.from_base ? "a from_base entry of " : "", dtype_str(t.dtype), shape_str(t.shape));
  }
  p.table_bytes = r.pos;
  expect_at = align_up(r.pos);
  for (size_t i = 0; i < p.tensors.size(); ++i) {
    PackedTensor& t = p.tensors[i];
    if (offsets[i] != expect_at)
      RF_FAIL("{}: tensor {} '{}' field 'data_offset' is {}, expected {} (the next 64-byte boundary)", what, i,
              t.name, offsets[i], expect_at);
    if (sizes[i] > n || offsets[i] > n - sizes[i])
      RF_FAIL("{}: tensor {} '{}' data [{}, {}) lies outside the {}-byte payload", what, i, t.name, offsets[i],
              offsets[i] + sizes[i], n);
    t.offset = offsets[i];
    t.data.assign(data + offsets[i], data + offsets[i] + sizes[i]);
    expect_at = align_up(offsets[i] + sizes[i]);
  }
  const uint64_t end = p.tensors.empty() ? align_up(p.table_bytes)
                                         : p.tensors.back().offset + p.tensors.back().data.size();
  if (end != n)
    RF_FAIL("{}: payload is {} bytes, but its directory accounts for {} (expected no trailing bytes)", what, n, end);
}

}  // namespace

Package parse_package(const uint8_t* data, size_t size, const std::string& what) {
  const uint64_t min = kPackageHeaderBytes + kPackageTrailerBytes;
  if (size < min)
    RF_FAIL("{}: file is {} bytes, expected at least {} (64-byte header + 8-byte checksum); truncated or not a "
            "package", what, size, min);
  if (std::memcmp(data, kPackageMagic, 8) != 0)
    RF_FAIL("{}: header field 'magic' is not \"RFPK\\r\\n\\x1a\\n\" (not a reframe package, or mangled by a text "
            "transfer)", what);
  Package p;
  p.version = uint16_t(load_le(data + 8, 2));
  if (p.version != kPackageVersionNoMeta && p.version != kPackageVersion)
    RF_FAIL("{}: header field 'version' is {}, expected {} or {} (the format versions this reader knows)", what,
            p.version, kPackageVersionNoMeta, kPackageVersion);
  const uint64_t header_bytes = load_le(data + 10, 2);
  if (header_bytes != kPackageHeaderBytes)
    RF_FAIL("{}: header field 'header_bytes' is {}, expected {}", what, header_bytes, kPackageHeaderBytes);
  p.flags = uint32_t(load_le(data + 12, 4));
  if (p.flags & ~kPkgKnownFlags)
    RF_FAIL("{}: header field 'flags' is 0x{:x}, expected only bits 0x{:x} (zstd, delta, bn_folded, materialized)",
            what, p.flags, uint32_t(kPkgKnownFlags));
  p.payload_stored = load_le(data + 16, 8);
  p.payload_raw = load_le(data + 24, 8);
  const uint64_t want_hash = load_le(data + 32, 8);
  p.base_payload_hash = load_le(data + 40, 8);
  p.target_payload_hash = load_le(data + 48, 8);
  const uint64_t reserved = load_le(data + 56, 8);
  const uint64_t holds = size - min;
  if (p.payload_stored > holds)
    RF_FAIL("{}: header field 'payload_stored_bytes' says {} bytes, but the file holds only {} between header and "
            "checksum (truncated?)", what, p.payload_stored, holds);
  if (p.payload_stored < holds)
    RF_FAIL("{}: header field 'payload_stored_bytes' says {} bytes, but the file holds {} between header and "
            "checksum (trailing bytes?)", what, p.payload_stored, holds);
  p.file_bytes = size;
  p.file_checksum = load_le(data + size - 8, 8);
  const uint64_t got = xxhash64(data, size - 8);
  // Fuzz builds skip the two hash comparisons, or random mutations would never get past them to the parser.
  if (got != p.file_checksum && !kFuzzing)
    RF_FAIL("{}: checksum mismatch: the trailer says xxh64 0x{:016x}, the file's bytes give 0x{:016x} (corrupted "
            "in transit or storage)", what, p.file_checksum, got);
  if (reserved != 0) RF_FAIL("{}: header field 'reserved' is {}, expected 0", what, reserved);
  if (p.has(kPkgDelta) != (p.base_payload_hash != 0 || p.target_payload_hash != 0) ||
      (p.has(kPkgDelta) && (p.base_payload_hash == 0 || p.target_payload_hash == 0)))
    RF_FAIL("{}: header fields 'base_payload_hash'/'target_payload_hash' are 0x{:x}/0x{:x}, expected both non-zero "
            "exactly when the delta flag is set (flags 0x{:x})", what, p.base_payload_hash, p.target_payload_hash,
            p.flags);
  if (p.payload_raw > kMaxPayload)
    RF_FAIL("{}: header field 'payload_raw_bytes' is {}, expected at most {}", what, p.payload_raw, kMaxPayload);

  const uint8_t* payload = data + kPackageHeaderBytes;
  std::vector<uint8_t> raw;
  if (p.has(kPkgZstd)) {
    if (p.payload_raw > kMaxZstdRatio * p.payload_stored + (1u << 20))
      RF_FAIL("{}: header field 'payload_raw_bytes' is {} for {} compressed bytes, expected a ratio below {}",
              what, p.payload_raw, p.payload_stored, kMaxZstdRatio);
    const unsigned long long frame = ZSTD_getFrameContentSize(payload, size_t(p.payload_stored));
    if (frame == ZSTD_CONTENTSIZE_ERROR || frame == ZSTD_CONTENTSIZE_UNKNOWN)
      RF_FAIL("{}: payload is not a zstd frame with a declared size (flags say zstd)", what);
    if (frame != p.payload_raw)
      RF_FAIL("{}: zstd frame declares {} bytes, header field 'payload_raw_bytes' says {}", what, frame,
              p.payload_raw);
    raw.resize(size_t(p.payload_raw));
    const size_t out = ZSTD_decompress(raw.data(), raw.size(), payload, size_t(p.payload_stored));
    if (ZSTD_isError(out)) RF_FAIL("{}: zstd payload does not decompress: {}", what, ZSTD_getErrorName(out));
    if (out != p.payload_raw)
      RF_FAIL("{}: zstd payload gave {} bytes, header field 'payload_raw_bytes' says {}", what, out, p.payload_raw);
    payload = raw.data();
  } else if (p.payload_raw != p.payload_stored) {
    RF_FAIL("{}: header fields 'payload_raw_bytes' ({}) and 'payload_stored_bytes' ({}) differ, expected equal "
            "without zstd", what, p.payload_raw, p.payload_stored);
  }
  p.payload_hash = xxhash64(payload, size_t(p.payload_raw));
  if (p.payload_hash != want_hash && !kFuzzing)
    RF_FAIL("{}: header field 'payload_hash' is 0x{:016x}, the payload gives 0x{:016x}", what, want_hash,
            p.payload_hash);
  parse_payload(payload, p.payload_raw, p, what);
  return p;
}

std::vector<uint8_t> read_file_bytes(const std::string& path, uint64_t max_bytes) {
  std::ifstream f(path, std::ios::binary);
  if (!f) RF_FAIL("{}: cannot open for reading: {}", path, std::strerror(errno));
  f.seekg(0, std::ios::end);
  const std::streamoff size = f.tellg();
  if (size < 0) RF_FAIL("{}: cannot determine the file size", path);
  if (uint64_t(size) > max_bytes) RF_FAIL("{}: file is {} bytes, expected at most {}", path, size, max_bytes);
  f.seekg(0);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  if (size > 0 && !f.read(reinterpret_cast<char*>(bytes.data()), size))
    RF_FAIL("{}: read failed after {} of {} bytes", path, f.gcount(), size);
  return bytes;
}

Package read_package(const std::string& path) {
  std::vector<uint8_t> bytes = read_file_bytes(path, kMaxPayload + kPackageHeaderBytes + kPackageTrailerBytes);
  return parse_package(bytes.data(), bytes.size(), path);
}

namespace {

// Temp files of earlier writers of `path` that died before their rename (kill -9, power loss): "<name>.tmp.<pid>"
// whose process no longer exists, and the pid-less "<name>.tmp" of older versions. A live writer's temp is kept.
void remove_stale_temps(const std::string& dir, const std::string& name) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  const std::string prefix = name + ".tmp";
  while (const dirent* e = ::readdir(d)) {
    const std::string f = e->d_name;
    if (f.compare(0, prefix.size(), prefix) != 0) continue;
    bool stale = f.size() == prefix.size();
    if (!stale && f.size() > prefix.size() + 1 && f[prefix.size()] == '.') {
      const std::string digits = f.substr(prefix.size() + 1);
      if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
      const long pid = std::stol(digits);
      stale = pid != long(::getpid()) && (pid <= 0 || (::kill(pid_t(pid), 0) != 0 && errno == ESRCH));
    }
    if (stale) (void)::unlink((dir + "/" + f).c_str());
  }
  ::closedir(d);
}

}  // namespace

void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes) {
  // Same directory as the target, so rename() is atomic (one file system); pid makes concurrent writers safe.
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) RF_FAIL("{}: cannot create temp file {}: {}", path, tmp, std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      RF_FAIL("{}: write failed after {} of {} bytes: {}", tmp, done, bytes.size(), std::strerror(e));
    }
    done += size_t(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    RF_FAIL("{}: fsync/close failed: {}", tmp, std::strerror(e));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    RF_FAIL("{}: rename from {} failed: {}", path, tmp, std::strerror(e));
  }
  // Make the rename itself durable (best effort: some file systems refuse fsync on a directory).
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  remove_stale_temps(dir, slash == std::string::npos ? path : path.substr(slash + 1));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

void write_package(const std::string& path, Package& p, int zstd_level) {
  write_file_atomic(path, serialize_package(p, zstd_level));
}

std::vector<float> decode_tensor(const PackedTensor& t, const std::string& what) {
  RF_CHECK(!t.from_base, "{}: tensor '{}' is a from_base entry (no data)", what, t.name);
  const int64_t n = t.numel();
  RF_CHECK(t.data.size() == t.stored_bytes(), "{}: tensor '{}' has {} data bytes, expected {}", what, t.name,
           t.data.size(), t.stored_bytes());
  std::vector<float> v(static_cast<size_t>(n));
  const uint8_t* in = t.data.data();
  // Non-finite values are refused even when the hashes match: a diverged training run writes valid hashes
  // over NaN weights, and a device must not run (or report accuracy for) such a model.
  auto refuse_non_finite = [&](int64_t i, float x) {
    RF_FAIL("{}: tensor '{}' value {} (of {}) is {}, expected finite values (a diverged or corrupted model)", what,
            t.name, i, n, x);
  };
  if (t.dtype == DType::f32) {
    for (int64_t i = 0; i < n; ++i) {
      v[i] = get_f32(in + 4 * i);
      if (!std::isfinite(v[i])) refuse_non_finite(i, v[i]);
    }
  } else if (t.dtype == DType::f16) {
    for (int64_t i = 0; i < n; ++i) {
      v[i] = half_to_float(uint16_t(in[2 * i] | in[2 * i + 1] << 8));
      if (!std::isfinite(v[i])) refuse_non_finite(i, v[i]);
    }
  } else if (t.dtype == DType::i8) {
    const int64_t rows = t.shape[0], cols = n / rows;
    const int8_t* q = reinterpret_cast<const int8_t*>(in + 4 * rows);
    for (int64_t r = 0; r < rows; ++r) {
      const float scale = get_f32(in + 4 * r);
      if (!std::isfinite(scale) || scale < 0.f)
        RF_FAIL("{}: tensor '{}' int8 scale of row {} is {}, expected a finite value >= 0", what, t.name, r, scale);
      for (int64_t i = 0; i < cols; ++i) {
        const int8_t x = q[r * cols + i];
        // The writer's range is symmetric, [-127, 127] (docs/PACKAGE.md); -128 is not a value it writes.
        if (x == -128)
          RF_FAIL("{}: tensor '{}' int8 value {} (row {}) is -128, expected -127..127 (symmetric quantisation)",
                  what, t.name, r * cols + i, r);
        v[r * cols + i] = scale * float(x);
        if (!std::isfinite(v[r * cols + i])) refuse_non_finite(r * cols + i, v[r * cols + i]);
      }
    }
  } else {
    RF_FAIL("{}: tensor '{}' has dtype {}, expected f32, f16 or i8", what, t.name, dtype_str(t.dtype));
  }
  return v;
}

ByteBreakdown package_breakdown(const Package& p) {
  ByteBreakdown b;
  b.header = kPackageHeaderBytes + kPackageTrailerBytes;
  b.seeds = 8 + 8 * p.seeds.size();
  b.meta = p.table_bytes - b.seeds;
  uint64_t data = 0;
  for (const PackedTensor& t : p.tensors) {
    const uint64_t n = t.data.size();
    data += n;
    if (t.kind == TensorKind::learnable) b.learnable += n;
    if (t.kind == TensorKind::state) b.state += n;
    if (t.kind == TensorKind::seeded) b.seeded += n;
  }
  b.payload_raw = p.payload_raw;
  b.payload_stored = p.payload_stored;
  b.padding = p.payload_raw - p.table_bytes - data;
  b.file = p.file_bytes;
  return b;
}

}  // namespace rf
