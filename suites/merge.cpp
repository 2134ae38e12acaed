// Merging the parts of a sharded suite run (see merge.h).
#include "suites/merge.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "host/core/check.h"
#include "host/core/comm.h"
#include "host/core/printable.h"
#include "suites/classify.h"
#include "suites/dense.h"
#include "suites/runs.h"
#include "training/outputs.h"

namespace rf {

namespace {

using json = nlohmann::json;

// The first place where a and b differ, as "path: A vs B" ("" when equal).
std::string first_difference(const json& a, const json& b, const std::string& path) {
  if (a.is_object() && b.is_object()) {
    for (auto it = a.begin(); it != a.end(); ++it) {
      if (!b.contains(it.key())) return fmt::format("{}.{}: present vs absent", path, it.key());
      std::string d = first_difference(it.value(), b[it.key()], path + "." + it.key());
      if (!d.empty()) return d;
    }
    for (auto it = b.begin(); it != b.end(); ++it)
      if (!a.contains(it.key())) return fmt::format("{}.{}: absent vs present", path, it.key());
    return "";
  }
  if (a == b) return "";
  auto shortened = [](const json& j) {
    std::string t = j.dump();
    return t.size() > 80 ? t.substr(0, 77) + "..." : t;
  };
  return fmt::format("{}: {} vs {}", path, shortened(a), shortened(b));
}

const json& field(const std::string& file, const json& j, const char* key) {
  RF_CHECK(j.is_object() && j.contains(key), "merge: {}: no field '{}' (expected a suite's results JSON)",
           printable(file), key);
  return j[key];
}

}  // namespace

json merge_parts(const std::vector<std::pair<std::string, json>>& parts) {
  RF_CHECK(!parts.empty(), "merge: no parts given (expected the results JSON of every part, 0..N-1)");
  // Every part: a suite's results with a "shard" record, of the same run as the first.
  const std::string& file0 = parts[0].first;
  const json& p0 = parts[0].second;
  const std::string schema = field(file0, p0, "schema").is_string() ? p0["schema"].get<std::string>() : "";
  RF_CHECK(schema == "reframe.classify/1" || schema == "reframe.detect/1" || schema == "reframe.segment/1",
           "merge: {}: schema '{}' (expected reframe.classify/1, reframe.detect/1 or reframe.segment/1)",
           printable(file0), printable(schema));
  for (const auto& [file, j] : parts) {
    RF_CHECK(j.is_object() && j.contains("shard") && j["shard"].is_object(),
             "merge: {}: not a part of a sharded run (no 'shard' field: it was written without --shard I/N)",
             printable(file));
    const json& sh = j["shard"];
    for (const char* k : {"index", "count", "models", "seeds", "rows"})
      RF_CHECK(sh.contains(k), "merge: {}: shard record has no '{}'", printable(file), k);
    RF_CHECK(field(file, j, "models").is_array() && j["models"].size() == sh["rows"].size(),
             "merge: {}: {} model rows, the shard record lists {}", printable(file), j["models"].size(),
             sh["rows"].size());
    for (const char* k : {"schema", "dataset", "budget"}) {
      const std::string d = first_difference(field(file0, p0, k), field(file, j, k), k);
      RF_CHECK(d.empty(), "merge: {} and {} are parts of different runs: {} (merge the parts of one run)",
               printable(file0), printable(file), d);
    }
    json a = p0["shard"], b = sh;
    a.erase("index"), a.erase("rows"), b.erase("index"), b.erase("rows");
    const std::string d = first_difference(a, b, "shard");
    RF_CHECK(d.empty(), "merge: {} and {} are parts of different runs: {} (merge the parts of one run)",
             printable(file0), printable(file), d);
  }
  const int count = p0["shard"]["count"].get<int>(), seeds = p0["shard"]["seeds"].get<int>();
  const std::vector<std::string> model_texts = p0["shard"]["models"].get<std::vector<std::string>>();
  // Each index 0..N-1 exactly once.
  std::vector<const std::pair<std::string, json>*> by_index(size_t(count), nullptr);
  for (const auto& part : parts) {
    const int i = part.second["shard"]["index"].get<int>();
    RF_CHECK(i >= 0 && i < count, "merge: {}: shard index {} (expected 0..{})", printable(part.first), i, count - 1);
    RF_CHECK(!by_index[size_t(i)], "merge: shards overlap: {} and {} are both part {}/{}",
             printable(by_index[size_t(i)]->first), printable(part.first), i, count);
    by_index[size_t(i)] = &part;
  }
  std::vector<std::string> missing;
  for (int i = 0; i < count; ++i)
    if (!by_index[size_t(i)]) missing.push_back(fmt::format("{}/{}", i, count));
  RF_CHECK(missing.empty(), "merge: missing part(s) {} of a run in {} parts (give every part's results JSON)",
           fmt::join(missing, ", "), count);

  // Per model: every seed's run from whichever part ran it.
  json models = json::array();
  for (int mi = 0; mi < int(model_texts.size()); ++mi) {
    std::map<int, json> runs;
    json base;  // the row of the part that ran the last seed
    int base_seed = -1;
    int64_t train_peak = 0;
    for (const auto* part : by_index) {
      const json& rows = part->second["shard"]["rows"];
      for (size_t r = 0; r < rows.size(); ++r) {
        if (rows[r].get<int>() != mi) continue;
        const json& row = part->second["models"][r];
        train_peak = std::max(train_peak, row["peak_memory_bytes"]["train_tensors"].get<int64_t>());
        for (const json& run : row["runs"]) {
          const int s = run["seed"].get<int>();
          RF_CHECK(!runs.count(s), "merge: {}: model '{}' seed {} is in two parts", printable(part->first),
                   printable(model_texts[size_t(mi)]), s);
          runs[s] = run;
          if (s > base_seed) base_seed = s, base = row;
        }
      }
    }
    RF_CHECK(int(runs.size()) == seeds, "merge: model '{}' has {} of {} seeds' runs in the parts",
             printable(model_texts[size_t(mi)]), runs.size(), seeds);
    json row = base;
    row["runs"] = json::array();
    for (auto& [s, run] : runs) row["runs"].push_back(run);
    row["peak_memory_bytes"]["train_tensors"] = train_peak;
    summarize_runs(row);
    if (schema == "reframe.classify/1")
      summarize_classify_row(row);
    else
      summarize_dense_row(row, schema == "reframe.detect/1" ? "detect" : "segment",
                          p0["dataset"]["classes"].get<std::vector<std::string>>());
    models.push_back(row);
  }

  json out = by_index[0]->second;
  out.erase("shard");
  out["models"] = models;
  double wall = 0;
  long long rss = 0;
  json from = json::array(), pictures = json::array();
  for (const auto* part : by_index) {
    const json& j = part->second;
    wall = std::max(wall, j.value("wall_seconds", 0.0));
    rss = std::max(rss, j.value("max_rss_bytes", 0LL));
    from.push_back({{"file", part->first},
                    {"command", j["provenance"].value("command", std::string())}});
    if (j.contains("pictures"))
      for (const json& p : j["pictures"]) pictures.push_back(p);
  }
  out["wall_seconds"] = wall;  // the parts ran side by side: the longest
  out["max_rss_bytes"] = rss;
  out["provenance"]["merged_from"] = from;
  if (out.contains("pictures")) out["pictures"] = pictures;
  return out;
}

json merge_rank_groups(const json& part, const std::string& results_path) {
  // Only the group roots hold a part (the other ranks of a group trained and send nothing).
  const std::vector<std::string> all = comm::gather_to_world_root(part.is_null() ? std::string() : part.dump());
  if (!comm::is_world_root()) return json();
  std::vector<std::pair<std::string, json>> parts;
  for (size_t r = 0; r < all.size(); ++r) {
    if (all[r].empty()) continue;
    json j = json::parse(all[r], nullptr, false);
    RF_CHECK(!j.is_discarded() && j.contains("shard"), "merge: world rank {}'s results are not a suite's part", r);
    parts.emplace_back(fmt::format("rank group {}/{} (world rank {})", j["shard"]["index"].get<int>(),
                                   comm::groups(), r),
                       std::move(j));
  }
  json merged = merge_parts(parts);
  write_json_atomic(results_path, merged);
  return merged;
}

}  // namespace rf
