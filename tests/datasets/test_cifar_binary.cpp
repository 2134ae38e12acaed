// CIFAR-10 binary format: records with known pixels read back exactly; malformed files give clear errors.
#include <gtest/gtest.h>

#include "datasets/cifar_binary.h"
#include "ds_testing.h"

using namespace rf::data;
using namespace rf::testing;

namespace {
// Pixel p (0..1023) of plane c of record r of file f: a value that differs with all four.
uint8_t px(int f, int r, int c, int p) { return uint8_t((f * 31 + r * 7 + c * 101 + p * 13) & 0xFF); }

std::vector<uint8_t> records(int f, const std::vector<int>& labels) {
  std::vector<uint8_t> b;
  for (size_t r = 0; r < labels.size(); ++r) {
    b.push_back(uint8_t(labels[r]));
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 1024; ++p) b.push_back(px(f, int(r), c, p));
  }
  return b;
}

// 5 train files of 2 records (labels 2f-2, 2f-1 -> 0..9), a test file of 2 records (labels 9, 0).
void write_set(const TempDir& t) {
  for (int f = 1; f <= 5; ++f) write_bytes(t / ("data_batch_" + std::to_string(f) + ".bin"), records(f, {2 * f - 2, 2 * f - 1}));
  write_bytes(t / "test_batch.bin", records(0, {9, 0}));
}
}  // namespace

TEST(CifarBinary, ReadsKnownRecords) {
  TempDir t;
  write_set(t);
  const Dataset tr = load_cifar_binary(t.path.string(), "train");
  ASSERT_EQ(tr.N, 10);
  EXPECT_EQ(tr.C, 3);
  EXPECT_EQ(tr.H, 32);
  EXPECT_EQ(tr.W, 32);
  EXPECT_EQ(tr.classes, cifar10_class_names());
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(tr.labels[size_t(i)], i);
    const int f = i / 2 + 1, r = i % 2;
    for (int c = 0; c < 3; ++c)
      for (int p : {0, 1, 31, 32, 517, 1023})
        ASSERT_EQ(tr.image(i)[c * 1024 + p], px(f, r, c, p)) << "image " << i << " plane " << c << " pixel " << p;
  }
  const Dataset te = load_cifar_binary(t.path.string(), "test");
  ASSERT_EQ(te.N, 2);
  EXPECT_EQ(te.labels, (std::vector<int32_t>{9, 0}));
  EXPECT_EQ(te.image(1)[2 * 1024 + 5], px(0, 1, 2, 5));
  EXPECT_TRUE(looks_like_cifar_binary(t.path.string()));
}

TEST(CifarBinary, FindsTheOfficialSubfolderAndMetaNames) {
  TempDir t;
  const std::string sub = t / "cifar-10-batches-bin";
  std::filesystem::create_directories(sub);
  for (int f = 1; f <= 5; ++f) write_bytes(sub + "/data_batch_" + std::to_string(f) + ".bin", records(f, {1, 2}));
  write_bytes(sub + "/test_batch.bin", records(0, {3}));
  std::string meta;
  for (int k = 0; k < 10; ++k) meta += "name" + std::to_string(k) + "\n";
  meta += "\n";  // the official file ends with blank lines
  write_bytes(sub + "/batches.meta.txt", std::vector<uint8_t>(meta.begin(), meta.end()));
  const Dataset te = load_cifar_binary(t.path.string(), "test");
  EXPECT_EQ(te.N, 1);
  EXPECT_EQ(te.classes[3], "name3");
  EXPECT_TRUE(looks_like_cifar_binary(t.path.string()));
}

TEST(CifarBinary, WrongSizeNamesFileAndSize) {
  TempDir t;
  write_set(t);
  auto b = records(3, {1, 2});
  b.push_back(0);  // 6,147 bytes
  write_bytes(t / "data_batch_3.bin", b);
  const std::string msg = error_of([&] { load_cifar_binary(t.path.string(), "train"); });
  EXPECT_TRUE(contains(msg, "data_batch_3.bin: 6,147 bytes is not a whole number of 3073-byte records")) << msg;
}

TEST(CifarBinary, LabelOutOfRange) {
  TempDir t;
  write_set(t);
  write_bytes(t / "test_batch.bin", records(0, {4, 10}));
  const std::string msg = error_of([&] { load_cifar_binary(t.path.string(), "test"); });
  EXPECT_TRUE(contains(msg, "test_batch.bin: record 1 (byte offset 3,073): label 10 is out of range, expected 0..9"))
      << msg;
}

TEST(CifarBinary, MissingOrEmptyFile) {
  TempDir t;
  write_set(t);
  std::filesystem::remove(t / "data_batch_4.bin");
  std::string msg = error_of([&] { load_cifar_binary(t.path.string(), "train"); });
  EXPECT_TRUE(contains(msg, "missing file")) << msg;
  EXPECT_TRUE(contains(msg, "data_batch_4.bin")) << msg;
  EXPECT_NO_THROW(load_cifar_binary(t.path.string(), "test"));  // the test split does not need it

  write_bytes(t / "data_batch_4.bin", {});
  msg = error_of([&] { load_cifar_binary(t.path.string(), "train"); });
  EXPECT_TRUE(contains(msg, "data_batch_4.bin: empty file")) << msg;

  msg = error_of([&] { load_cifar_binary(t / "nope", "train"); });
  EXPECT_TRUE(contains(msg, "is not a directory")) << msg;
  msg = error_of([&] { load_cifar_binary(t.path.string(), "validation"); });
  EXPECT_TRUE(contains(msg, "split 'validation', expected 'train' or 'test'")) << msg;
}

TEST(CifarBinary, BadMetaFile) {
  TempDir t;
  write_set(t);
  write_text(t / "batches.meta.txt", "a\nb\nc\n");
  const std::string msg = error_of([&] { load_cifar_binary(t.path.string(), "test"); });
  EXPECT_TRUE(contains(msg, "batches.meta.txt: 3 class names, expected 10")) << msg;
}

// ---- issue 18: the in-memory reader, the record cap, labels in the last record, duplicate names ----------
TEST(CifarBinary, MemoryReaderChecksLikeTheFileReader) {
  std::vector<uint8_t> recs(2 * 3073, 7);
  recs[0] = 9;
  recs[3073] = 0;
  Dataset d;
  read_cifar_batch_memory(recs.data(), recs.size(), "mem.bin", d);
  EXPECT_EQ(d.N, 2);
  EXPECT_EQ(d.labels, (std::vector<int32_t>{9, 0}));
  recs[3073] = 255;
  std::string msg = error_of([&] { read_cifar_batch_memory(recs.data(), recs.size(), "mem.bin", d); });
  EXPECT_TRUE(contains(msg, "mem.bin: record 1 (byte offset 3,073): label 255 is out of range, expected 0..9")) << msg;
  EXPECT_EQ(d.N, 2);  // unchanged after the error
  EXPECT_EQ(d.pixels.size(), 2u * 3072);
  msg = error_of([&] { read_cifar_batch_memory(recs.data(), 3072, "short.bin", d); });
  EXPECT_TRUE(contains(msg, "short.bin: 3,072 bytes is not a whole number of 3073-byte records")) << msg;
  msg = error_of([&] { read_cifar_batch_memory(recs.data(), 0, "empty.bin", d); });
  EXPECT_TRUE(contains(msg, "empty.bin: empty file")) << msg;
}

TEST(CifarBinary, TooManyRecordsIsRefusedBeforeAllocating) {
  TempDir t;
  // A sparse file of 1,000,001 records (3 GB on paper, nothing on disk): refused from its size alone.
  const std::string f = t / "big/test_batch.bin";
  std::filesystem::create_directories(t / "big");
  { std::ofstream(f, std::ios::binary).put(0); }
  std::filesystem::resize_file(f, uint64_t(kMaxCifarRecordsPerFile + 1) * 3073);
  Dataset d;
  const std::string msg = error_of([&] { read_cifar_batch_file(f, d); });
  EXPECT_TRUE(contains(msg, "test_batch.bin: 3,073,003,073 bytes = 1,000,001 records, above the limit of 1,000,000"))
      << msg;
  EXPECT_EQ(d.N, 0);
}

TEST(CifarBinary, DuplicateMetaNames) {
  TempDir t;
  std::vector<uint8_t> rec(3073, 1);
  write_bytes(t / "d/test_batch.bin", rec);
  std::string names;
  for (int i = 0; i < 10; ++i) names += (i == 3 ? std::string("c0") : "c" + std::to_string(i)) + "\n";
  write_bytes(t / "d/batches.meta.txt", std::vector<uint8_t>(names.begin(), names.end()));
  const std::string msg = error_of([&] { load_cifar_binary(t / "d", "test"); });
  EXPECT_TRUE(contains(msg, "batches.meta.txt: a class name is listed twice")) << msg;
}
