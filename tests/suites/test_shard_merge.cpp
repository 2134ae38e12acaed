// Suites spread over machines: `--shard I/N` (suites/runs.h: Shard) and `reframe merge` (suites/merge.h). A tiny
// classification suite (NL-ResNet-18 dw x 3 seeds, 1 epoch, 8x8 synthetic images) run whole and as 2 parts merged gives
// the same results file except for what is measured per process; parts of different runs, overlapping or missing
// parts are refused. A few seconds.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "suites/classify.h"
#include "suites/merge.h"
#include "testing.h"

using namespace rf;
using json = nlohmann::json;
using rf::testing::expect_error;
using rf::testing::temp_dir;

namespace {

ClassifyOptions tiny(const std::string& out, Shard shard = {}) {
  ClassifyOptions o;
  o.models = {"nl-resnet18:cnl=dw"};  // ResNet-18's 45 MB packages would take most of the test's time
  o.synthetic_train = 60, o.synthetic_test = 20, o.image_size = 8, o.seeds = 3;
  o.train.epochs = 1, o.train.batch = 20, o.train.progress = false, o.train.bn_recalibrate = 40;
  o.throughput_batches = {2};
  o.latency_reps = 1, o.throughput_reps = 1;
  o.out_dir = out;
  o.shard = shard;
  return o;
}

// The results without what a process measures or names for itself: timings, memory, paths, provenance.
json deterministic(json j) {
  if (j.is_object()) {
    json out = json::object();
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& k = it.key();
      const bool measured = k.find("seconds") != std::string::npos || k.find("per_s") != std::string::npos ||
                            k.find("latency") != std::string::npos || k.find("throughput") != std::string::npos ||
                            k == "peak_memory_bytes" || k == "max_rss_bytes" || k == "path" || k == "provenance";
      if (!measured) out[k] = deterministic(it.value());
    }
    return out;
  }
  if (j.is_array()) {
    json out = json::array();
    for (const json& e : j) out.push_back(deterministic(e));
    return out;
  }
  return j;
}

}  // namespace

TEST(Shard, ParsesAndRefuses) {
  const Shard s = Shard::parse("1/3");
  EXPECT_EQ(s.index, 1);
  EXPECT_EQ(s.count, 3);
  EXPECT_TRUE(s.owns(4));
  EXPECT_FALSE(s.owns(3));
  EXPECT_TRUE(Shard::parse("0/1").whole());
  for (const char* bad : {"3/3", "1", "a/2", "-1/2", "1/0", "1/2/3", " 1/2", "0x1/2", ""})
    expect_error([&] { (void)Shard::parse(bad); }, {"--shard", "'" + std::string(bad) + "'"}, bad);
  expect_error([] { (void)Shard::parse("2/2"); }, {"0 <= I < N"});
  expect_error([] { (void)Shard::parse("0/0"); }, {"N = 0"});
}

TEST(Shard, TwoPartsMergedEqualTheWholeRun) {
  const std::string dir = temp_dir("shard_merge");
  const json whole = run_classify(tiny(dir + "/whole"));
  EXPECT_FALSE(whole.contains("shard"));
  const json p0 = run_classify(tiny(dir + "/p0", Shard::parse("0/2")));
  const json p1 = run_classify(tiny(dir + "/p1", Shard::parse("1/2")));
  // Round-robin over (model, seed): part 0 runs seeds 0 and 2, part 1 seed 1.
  ASSERT_EQ(p0["models"].size(), 1u);
  EXPECT_EQ(p0["models"][0]["runs"].size(), 2u);
  EXPECT_EQ(p1["models"][0]["runs"][0]["seed"], 1);

  const json merged = merge_parts({{"p1.json", p1}, {"p0.json", p0}});  // any order
  EXPECT_FALSE(merged.contains("shard"));
  EXPECT_EQ(merged["provenance"]["merged_from"].size(), 2u);
  EXPECT_EQ(deterministic(merged), deterministic(whole));
  EXPECT_EQ(merged["models"][0]["test_acc"], whole["models"][0]["test_acc"]);  // the figures the gate reads

  expect_error([&] { (void)merge_parts({{"p0.json", p0}}); }, {"missing part(s) 1/2"});
  expect_error([&] { (void)merge_parts({{"p0.json", p0}, {"again.json", p0}, {"p1.json", p1}}); },
               {"shards overlap", "p0.json", "again.json", "0/2"});
  expect_error([&] { (void)merge_parts({{"whole.json", whole}}); }, {"whole.json", "not a part of a sharded run"});
  json other = p1;
  other["budget"]["epochs"] = 2;
  expect_error([&] { (void)merge_parts({{"p0.json", p0}, {"other.json", other}}); },
               {"p0.json", "other.json", "different runs", "budget.epochs: 1 vs 2"});
  other = p1;
  other["shard"]["count"] = 3;
  expect_error([&] { (void)merge_parts({{"p0.json", p0}, {"other.json", other}}); }, {"shard.count: 2 vs 3"});
  std::filesystem::remove_all(dir);
}
