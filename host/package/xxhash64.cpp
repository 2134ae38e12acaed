// XXH64: four 64-bit lanes each absorb 8-byte words of 32-byte stripes (v = rotl(v + w*P2, 31) * P1), the lanes
// are merged, the tail (8-, 4-, 1-byte steps) is mixed in, and a final avalanche spreads every bit.
// Byte order: words are read little-endian (memcpy + a swap on big-endian hosts), so the value is portable.
#include "host/package/xxhash64.h"

#include <cstring>

namespace rf {

namespace {
constexpr uint64_t P1 = 0x9E3779B185EBCA87ull, P2 = 0xC2B2AE3D27D4EB4Full, P3 = 0x165667B19E3779F9ull,
                   P4 = 0x85EBCA77C2B2AE63ull, P5 = 0x27D4EB2F165667C5ull;

inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

inline uint64_t read64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
inline uint32_t read32(const unsigned char* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

inline uint64_t round(uint64_t acc, uint64_t w) { return rotl(acc + w * P2, 31) * P1; }
inline uint64_t merge(uint64_t h, uint64_t v) { return (h ^ round(0, v)) * P1 + P4; }

// Lanes merged (or the short-input start), the tail absorbed, then the avalanche.
uint64_t finish(uint64_t h, const unsigned char* p, size_t n) {
  while (n >= 8) {
    h = rotl(h ^ round(0, read64(p)), 27) * P1 + P4;
    p += 8;
    n -= 8;
  }
  if (n >= 4) {
    h = rotl(h ^ (uint64_t(read32(p)) * P1), 23) * P2 + P3;
    p += 4;
    n -= 4;
  }
  while (n > 0) {
    h = rotl(h ^ (uint64_t(*p) * P5), 11) * P1;
    ++p;
    --n;
  }
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

uint64_t lanes_merged(const uint64_t v[4]) {
  uint64_t h = rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18);
  for (int i = 0; i < 4; ++i) h = merge(h, v[i]);
  return h;
}
}  // namespace

XXHash64::XXHash64(uint64_t seed) : seed_(seed) {
  v_[0] = seed + P1 + P2;
  v_[1] = seed + P2;
  v_[2] = seed;
  v_[3] = seed - P1;
}

void XXHash64::update(const void* data, size_t n) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  total_ += n;
  if (buffered_ + n < 32) {
    if (n) std::memcpy(buf_ + buffered_, p, n);
    buffered_ += n;
    return;
  }
  if (buffered_) {
    const size_t take = 32 - buffered_;
    std::memcpy(buf_ + buffered_, p, take);
    for (int i = 0; i < 4; ++i) v_[i] = round(v_[i], read64(buf_ + 8 * i));
    p += take;
    n -= take;
    buffered_ = 0;
  }
  while (n >= 32) {
    for (int i = 0; i < 4; ++i) v_[i] = round(v_[i], read64(p + 8 * i));
    p += 32;
    n -= 32;
  }
  if (n) std::memcpy(buf_, p, n);
  buffered_ = n;
}

uint64_t XXHash64::digest() const {
  uint64_t h = total_ >= 32 ? lanes_merged(v_) : seed_ + P5;
  return finish(h + total_, buf_, buffered_);
}

uint64_t xxhash64(const void* data, size_t n, uint64_t seed) {
  XXHash64 h(seed);
  h.update(data, n);
  return h.digest();
}

}  // namespace rf
