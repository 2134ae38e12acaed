// reframe gate: figures extracted from suite results and Google Benchmark JSON; an unchanged run passes; each
// kind of injected regression (more bytes, a slower kernel, lower accuracy, a missing figure) fails with its
// row named; noise margins follow gate/gate.h.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include "host/core/check.h"
#include "gate/gate.h"
#include "testing.h"

using namespace rf::gate;
using nlohmann::json;

namespace {

json suite_doc(double acc_shift = 0, double bytes_shift = 0) {
  auto model = [&](const char* name, double macs, double bytes, std::vector<double> acc, double thr) {
    double mean = 0;
    for (double& a : acc) a += acc_shift, mean += a / double(acc.size());
    double var = 0;
    for (double a : acc) var += (a - mean) * (a - mean) / double(acc.size() - 1);
    return json{{"model", name},
                {"macs", macs},
                {"learnable_params", macs / 50},
                {"seeded_weights", 0},
                {"bn_state", 9600},
                {"pool_window_reads", 0},
                {"package_bytes", {{"f32", bytes + bytes_shift}, {"f16", bytes / 2}}},
                {"test_acc", {{"mean", mean}, {"std", std::sqrt(var)}, {"values", acc}}},
                {"val_acc", {{"mean", 0.1}, {"std", 0}, {"values", {0.1}}}},
                {"throughput_images_per_s", {{"64", thr}}}};
  };
  return json{{"schema", "reframe.classify/1"},
              {"dataset", {{"test", 1000}}},
              {"models", {model("resnet18", 5.5e8, 44.7e6, {0.80, 0.82, 0.81}, 200),
                          model("nl-resnet18-dw", 5.8e7, 4.47e6, {0.78, 0.79, 0.77}, 500)}}};
}

// Google Benchmark JSON with repetitions: each impl's per-repetition times around `t` with +-2 % jitter.
json bench_doc(double cpu_slowdown = 1) {
  json list = json::array();
  auto add = [&](const std::string& name, double t) {
    for (int r = 0; r < 5; ++r)
      list.push_back({{"name", name},
                      {"run_name", name},
                      {"run_type", "iteration"},
                      {"repetition_index", r},
                      {"real_time", t * (1 + 0.02 * ((r % 3) - 1))},
                      {"time_unit", "ms"}});
    list.push_back({{"name", name + "_median"}, {"run_name", name}, {"run_type", "aggregate"}, {"real_time", t},
                    {"time_unit", "ms"}});
  };
  add("BM_max_pool/ref/pool2d(N=8)", 4.0);
  add("BM_max_pool/cpu/pool2d(N=8)", 0.5 * cpu_slowdown);
  add("BM_seeded_conv/ref/sc", 10.0);
  add("BM_seeded_conv/materialized/sc", 1.0);
  add("BM_seeded_conv/regen/sc", 1.2);
  add("BM_forward/resnet18/N=8/32x32", 40.0);
  add("BM_forward/nl-resnet18-dw/N=8/32x32", 16.0);
  return json{{"context", {{"num_cpus", 2}}}, {"benchmarks", list}};
}

std::vector<Figure> figures(const json& suite, const json& bench) {
  auto a = extract(suite, "classify.json"), b = extract(bench, "bench.json");
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

const Row& row(const std::vector<Row>& rows, const std::string& name) {
  for (const Row& r : rows)
    if (r.name == name) return r;
  ADD_FAILURE() << "no row " << name;
  static Row none;
  return none;
}

std::vector<std::string> failing(const std::vector<Row>& rows) {
  std::vector<std::string> out;
  for (const Row& r : rows)
    if (r.status == Status::regressed || r.status == Status::changed || r.status == Status::missing)
      out.push_back(r.name);
  return out;
}

}  // namespace

TEST(Gate, ExtractsEveryKindOfFigure) {
  auto figs = figures(suite_doc(), bench_doc());
  std::map<std::string, Figure> by;
  for (auto& f : figs) by[f.name] = f;
  ASSERT_TRUE(by.count("classify/nl-resnet18-dw/package_bytes/f32"));
  EXPECT_EQ(by["classify/nl-resnet18-dw/package_bytes/f32"].kind, Kind::exact);
  EXPECT_DOUBLE_EQ(by["classify/nl-resnet18-dw/package_bytes/f32"].value, 4.47e6);
  ASSERT_TRUE(by.count("classify/resnet18/test_acc"));
  EXPECT_NEAR(by["classify/resnet18/test_acc"].value, 0.81, 1e-12);
  EXPECT_EQ(by["classify/resnet18/test_acc"].n, 3);
  EXPECT_EQ(by["classify/resnet18/test_acc"].n_test, 1000);
  EXPECT_FALSE(by.count("classify/resnet18/val_acc")) << "validation accuracy is not gated";
  EXPECT_FALSE(by.count("ratio/classify/throughput/nl-resnet18-dw_over_resnet18/N=64"))
      << "suite throughputs are single measurements: not gated";
  // Benchmark ratios: denominators ref, resnet18, materialized; the aggregates are ignored.
  ASSERT_TRUE(by.count("ratio/BM_max_pool/cpu_over_ref/pool2d(N=8)"));
  EXPECT_NEAR(by["ratio/BM_max_pool/cpu_over_ref/pool2d(N=8)"].value, 8.0, 1e-9);
  EXPECT_EQ(by["ratio/BM_max_pool/cpu_over_ref/pool2d(N=8)"].n, 5);
  ASSERT_TRUE(by.count("ratio/BM_seeded_conv/regen_over_materialized/sc"));
  EXPECT_NEAR(by["ratio/BM_seeded_conv/regen_over_materialized/sc"].value, 1.0 / 1.2, 1e-9);
  ASSERT_TRUE(by.count("ratio/BM_forward/nl-resnet18-dw_over_resnet18/N=8/32x32"));
  EXPECT_NEAR(by["ratio/BM_forward/nl-resnet18-dw_over_resnet18/N=8/32x32"].value, 2.5, 1e-9);
}

TEST(Gate, APartOfAShardedRunIsRefused) {
  json part = suite_doc();
  part["shard"] = {{"index", 1}, {"count", 2}};
  rf::testing::expect_error([&] { (void)extract(part, "part1.json"); }, {"part1.json", "--shard", "reframe merge"});
}

TEST(Gate, UnchangedRunPasses) {
  auto base = figures(suite_doc(), bench_doc());
  auto rows = compare(base, figures(suite_doc(), bench_doc()), Options{});
  EXPECT_EQ(count_regressions(rows), 0) << markdown(rows, true);
  // And through the baseline file format.
  auto again = from_json(json::parse(to_json(base).dump()), "baseline.json");
  EXPECT_EQ(count_regressions(compare(again, base, Options{})), 0);
}

TEST(Gate, MoreBytesFailsNamingTheRow) {
  auto rows = compare(figures(suite_doc(), bench_doc()), figures(suite_doc(0, 64), bench_doc()), Options{});
  std::vector<std::string> bad = failing(rows);
  ASSERT_EQ(bad.size(), 2u) << markdown(rows, false);  // both models' f32 packages grew
  EXPECT_EQ(bad[0], "classify/resnet18/package_bytes/f32");
  EXPECT_EQ(row(rows, bad[1]).status, Status::changed);
  EXPECT_NE(markdown(rows, false).find("classify/nl-resnet18-dw/package_bytes/f32"), std::string::npos);
  Options loose;
  loose.tolerance = 1e-4;  // 64 bytes of 4.47 MB is within 0.01 %
  EXPECT_EQ(count_regressions(compare(figures(suite_doc(), bench_doc()), figures(suite_doc(0, 64), bench_doc()), loose)), 0);
}

TEST(Gate, SlowerKernelFailsNamingTheRow) {
  auto rows = compare(figures(suite_doc(), bench_doc()), figures(suite_doc(), bench_doc(2.0)), Options{});
  std::vector<std::string> bad = failing(rows);
  ASSERT_EQ(bad.size(), 1u) << markdown(rows, false);
  EXPECT_EQ(bad[0], "ratio/BM_max_pool/cpu_over_ref/pool2d(N=8)");
  EXPECT_NEAR(row(rows, bad[0]).current, 4.0, 1e-9);
  // 10 % slower is inside the 40 % floor: noise, not a regression.
  EXPECT_EQ(count_regressions(compare(figures(suite_doc(), bench_doc()), figures(suite_doc(), bench_doc(1.1)), Options{})), 0);
}

TEST(Gate, ARatioRegressesOnlyIfTheConfirmingMeasurementAgrees) {
  auto base = figures(suite_doc(), bench_doc());
  auto slow = figures(suite_doc(), bench_doc(2.0));
  const std::string name = "ratio/BM_max_pool/cpu_over_ref/pool2d(N=8)";
  // A burst of noise in the first measurement: the second one passes, so the row is ok but listed.
  auto rows = compare(base, slow, Options{}, &base);
  EXPECT_EQ(count_regressions(rows), 0) << markdown(rows, false);
  EXPECT_EQ(row(rows, name).status, Status::ok);
  EXPECT_TRUE(row(rows, name).remeasured);
  EXPECT_NE(markdown(rows, false).find(name), std::string::npos);
  EXPECT_NE(row(rows, name).note.find("the first was noise"), std::string::npos);
  // A real slowdown shows in both: still a regression, and the current figure is the second measurement.
  auto slower = figures(suite_doc(), bench_doc(2.5));
  rows = compare(base, slow, Options{}, &slower);
  ASSERT_EQ(failing(rows), std::vector<std::string>{name}) << markdown(rows, false);
  EXPECT_NEAR(row(rows, name).current, 8.0 / 2.5, 1e-9);
  EXPECT_NE(row(rows, name).note.find("both regress"), std::string::npos);
  // The confirming run never touches rows that passed, nor other kinds of figure.
  rows = compare(figures(suite_doc(-0.25), bench_doc()), figures(suite_doc(-0.25), bench_doc()), Options{}, &slow);
  EXPECT_EQ(count_regressions(rows), 0) << markdown(rows, false);
  rows = compare(base, figures(suite_doc(-0.25), bench_doc()), Options{}, &base);
  EXPECT_EQ(count_regressions(rows), 2) << markdown(rows, false);
}

TEST(Gate, LowerAccuracyFailsBeyondTheSeedNoise) {
  auto base = figures(suite_doc(), bench_doc());
  // Seeds' std 0.01 and a binomial floor sqrt(.8*.2/1000) = 0.0126 -> sigma_d = 0.0126*sqrt(2/3) = 0.0103,
  // margin 3 sigma_d = 0.031: a 2-point drop passes, a 5-point drop fails on both models.
  EXPECT_EQ(count_regressions(compare(base, figures(suite_doc(-0.02), bench_doc()), Options{})), 0);
  auto rows = compare(base, figures(suite_doc(-0.05), bench_doc()), Options{});
  std::vector<std::string> bad = failing(rows);
  ASSERT_EQ(bad.size(), 2u) << markdown(rows, false);
  EXPECT_EQ(bad[0], "classify/resnet18/test_acc");
  EXPECT_EQ(bad[1], "classify/nl-resnet18-dw/test_acc");
  EXPECT_NEAR(row(rows, bad[0]).allowed, 3 * std::sqrt(0.8 * 0.2 / 1000 * 2 / 3), 2e-3);
  // A gain is reported, never failed.
  auto up = compare(base, figures(suite_doc(+0.05), bench_doc()), Options{});
  EXPECT_EQ(count_regressions(up), 0);
  EXPECT_EQ(row(up, "classify/resnet18/test_acc").status, Status::improved);
}

TEST(Gate, MissingFigureFailsAndNewFigureDoesNot) {
  json suite = suite_doc();
  suite["models"].erase(1);
  auto rows = compare(figures(suite_doc(), bench_doc()), figures(suite, bench_doc()), Options{});
  EXPECT_EQ(row(rows, "classify/nl-resnet18-dw/macs").status, Status::missing);
  EXPECT_GT(count_regressions(rows), 0);
  auto rows2 = compare(figures(suite, bench_doc()), figures(suite_doc(), bench_doc()), Options{});
  EXPECT_EQ(count_regressions(rows2), 0);
  EXPECT_EQ(row(rows2, "classify/nl-resnet18-dw/macs").status, Status::added);
}

using rf::testing::expect_error;

TEST(Gate, BadInputNamesFileAndField) {
  json suite = suite_doc();
  suite["models"][1].erase("macs");
  expect_error([&] { extract(suite, "run/classify.json"); }, {"run/classify.json", "macs", "nl-resnet18-dw"}, "no macs");
  json bad = bench_doc();
  bad["benchmarks"][0]["real_time"] = "fast";
  expect_error([&] { extract(bad, "bench.json"); }, {"bench.json", "benchmarks[0]", "real_time", "\"fast\""}, "time");
}

// Issue 18, class 1: an input that yields no figure is an error naming the file and what was expected, never
// an empty list that compares nothing.
TEST(Gate, InputThatYieldsNoFigureIsAnError) {
  const std::string known = "expected suite results";
  std::vector<std::pair<json, std::vector<std::string>>> cases = {
      {json::object(), {"b.json", "without 'schema'", known}},
      {json::array(), {"b.json", "array", known}},
      {json("text"), {"b.json", "string", known}},
      {json(nullptr), {"b.json", "null", known}},
      {json{{"hello", 1}}, {"b.json", known}},
      {json{{"schema", "reframe.models/1"}, {"models", json::array()}}, {"b.json", "reframe.models/1", known}},
      {json{{"schema", "reframe.classify/2"}, {"models", json::array()}}, {"b.json", "reframe.classify/2", known}},
      {json{{"schema", 1}}, {"b.json", "schema 1", known}},
      {json{{"schema", "reframe.gate/1"}}, {"b.json", "missing field 'figures'"}},
      {json{{"schema", "reframe.gate/1"}, {"figures", json::array()}}, {"b.json", "'figures' is an empty list"}},
      {json{{"schema", "reframe.gate/1"}, {"figures", json::object()}}, {"b.json", "'figures' is {}", "array"}},
      {json{{"schema", "reframe.classify/1"}, {"models", json::array()}}, {"b.json", "'models' is []", "non-empty"}},
      {json{{"schema", "reframe.detect/1"}}, {"b.json", "missing field 'models'"}},
  };
  // Benchmarks without a denominator twin, or whose runs all failed, give no ratio either.
  json lone = bench_doc();
  json kept = json::array();
  for (auto& b : lone["benchmarks"])
    if (b["name"].get<std::string>().find("/cpu/") != std::string::npos) kept.push_back(b);
  lone["benchmarks"] = kept;
  json failed = bench_doc();
  for (auto& b : failed["benchmarks"]) b["error_occurred"] = true, b["error_message"] = "out of memory";
  for (size_t i = 0; i < cases.size(); ++i)
    expect_error([&] { extract(cases[i].first, "b.json"); }, cases[i].second, "case " + std::to_string(i) + " " + cases[i].first.dump());
  // Google Benchmark JSON without twins is a legitimate file that gives nothing: a warning from extract, and an
  // error when the inputs as a whole give nothing.
  namespace fs = std::filesystem;
  fs::path path = fs::temp_directory_path() / ("gate_empty_" + std::to_string(::getpid()) + ".json");
  for (const json& d : {json{{"benchmarks", json::array()}, {"context", json::object()}}, lone, failed}) {
    std::vector<std::string> heard;
    EXPECT_TRUE(extract(d, "b.json", [&](const std::string& w) { heard.push_back(w); }).empty());
    ASSERT_FALSE(heard.empty());
    EXPECT_NE(heard.back().find("b.json: Google Benchmark JSON without a timing ratio"), std::string::npos) << heard.back();
    std::ofstream(path.string()) << d.dump();
    expect_error([&] { load_figures({path.string()}, {}); }, {path.string(), "yields no figure", known}, "bench " + d.dump().substr(0, 40));
  }
  fs::remove(path);
}

// Wrong types, non-finite and out-of-range numbers in every field the reader takes: an error naming the file,
// the place and the field.
TEST(Gate, MalformedFieldsAreErrorsNamingTheField) {
  const double nan = std::nan(""), inf = INFINITY;
  struct Case {
    std::function<void(json&)> edit;
    std::vector<std::string> parts;
  };
  std::vector<Case> suite_cases = {
      {[](json& d) { d["models"][1]["macs"] = "many"; }, {"models[1]", "'macs'", "\"many\"", "number"}},
      {[](json& d) { d["models"][1]["macs"] = -1; }, {"'macs'", "whole number >= 0"}},
      {[](json& d) { d["models"][1]["macs"] = 1.5; }, {"'macs'", "whole number"}},
      {[&](json& d) { d["models"][1]["macs"] = nan; }, {"'macs'", "finite"}},
      {[&](json& d) { d["models"][0]["bn_state"] = inf; }, {"'bn_state'", "finite"}},
      {[](json& d) { d["models"][0]["seeded_weights"] = json::array(); }, {"'seeded_weights'", "number"}},
      {[](json& d) { d["models"][1]["package_bytes"] = json::array(); }, {"'package_bytes'", "dtype"}},
      {[](json& d) { d["models"][1]["package_bytes"] = json::object(); }, {"'package_bytes'", "at least one"}},
      {[](json& d) { d["models"][1]["package_bytes"]["f32"] = "4MB"; }, {"package_bytes.f32", "number"}},
      {[](json& d) { d["models"][1]["test_acc"] = 0.8; }, {"nl-resnet18-dw", "test_acc", "0.8", "object"}},
      {[](json& d) { d["models"][1]["test_acc"]["values"] = json::array(); }, {"test_acc", "'values'", "non-empty"}},
      {[](json& d) { d["models"][1]["test_acc"]["values"] = {0.5, 1.5}; }, {"test_acc: values[1]", "[0, 1]"}},
      {[](json& d) { d["models"][1]["test_acc"]["values"] = {"a"}; }, {"test_acc: values[0]", "number"}},
      {[&](json& d) { d["models"][1]["test_acc"]["values"] = {nan}; }, {"test_acc: values[0]", "finite"}},
      {[](json& d) { d["models"][1]["test_acc"]["std"] = -0.1; }, {"test_acc", "'std'", ">= 0"}},
      {[](json& d) { d["models"][1]["test_acc"]["std"] = "x"; }, {"test_acc", "'std'", "number"}},
      {[](json& d) { d["models"][1]["model"] = 3; }, {"models[1]", "'model'", "string"}},
      {[](json& d) { d["models"][1]["model"] = ""; }, {"models[1]", "'model'", "empty"}},
      {[](json& d) { d["models"][1] = "resnet"; }, {"models[1]", "object"}},
      {[](json& d) { d["models"] = json::object(); }, {"'models'", "array"}},
      {[](json& d) { d["dataset"] = 5; }, {"'dataset'", "object"}},
      {[](json& d) { d["dataset"]["test"] = -3; }, {"dataset.test", "whole number"}},
      {[](json& d) { d["dataset"]["test"] = "1000"; }, {"dataset.test", "number"}},
      {[](json& d) { d["models"][1]["model"] = "resnet18"; }, {"resnet18/learnable_params", "twice"}},
  };
  for (size_t i = 0; i < suite_cases.size(); ++i) {
    json d = suite_doc();
    suite_cases[i].edit(d);
    auto parts = suite_cases[i].parts;
    parts.push_back("run/classify.json");
    // Through load_figures so that duplicates are caught too.
    expect_error(
        [&] {
          auto figs = extract(d, "run/classify.json");
          std::set<std::string> seen;
          for (auto& f : figs)
            if (!seen.insert(f.name).second) RF_FAIL("run/classify.json: figure '{}' appears twice", f.name);
        },
        parts, "suite case " + std::to_string(i));
  }
  std::vector<Case> bench_cases = {
      {[](json& d) { d["benchmarks"][0]["real_time"] = -1; }, {"benchmarks[0]", "'real_time'", "> 0"}},
      {[](json& d) { d["benchmarks"][0]["real_time"] = 0; }, {"benchmarks[0]", "'real_time'", "> 0"}},
      {[&](json& d) { d["benchmarks"][0]["real_time"] = nan; }, {"benchmarks[0]", "'real_time'", "finite"}},
      {[](json& d) { d["benchmarks"][0].erase("real_time"); }, {"benchmarks[0]", "missing field 'real_time'"}},
      {[](json& d) { d["benchmarks"][0]["time_unit"] = "weeks"; }, {"benchmarks[0]", "'time_unit'", "weeks", "ns"}},
      {[](json& d) { d["benchmarks"][0]["time_unit"] = 3; }, {"benchmarks[0]", "'time_unit'", "string"}},
      {[](json& d) { d["benchmarks"][0]["run_name"] = 3; }, {"benchmarks[0]", "'run_name'", "string"}},
      {[](json& d) { d["benchmarks"][0]["run_type"] = false; }, {"benchmarks[0]", "'run_type'", "string"}},
      {[](json& d) { d["benchmarks"][0]["repetition_index"] = "x"; }, {"benchmarks[0]", "'repetition_index'"}},
      {[](json& d) { d["benchmarks"][0]["repetition_index"] = -2; }, {"benchmarks[0]", "'repetition_index'"}},
      {[](json& d) { d["benchmarks"][0]["error_occurred"] = "yes"; }, {"benchmarks[0]", "'error_occurred'"}},
      {[](json& d) { d["benchmarks"][0] = 5; }, {"benchmarks[0]", "object"}},
      {[](json& d) { d["benchmarks"] = json::object(); }, {"'benchmarks'", "array"}},
      {[](json& d) { d["context"] = 3; }, {"'context'", "object"}},
      // A ratio that overflows a double (1e-300 s over 1e300 s) is refused, not divided into inf.
      {[](json& d) {
         for (auto& b : d["benchmarks"]) {
           if (b["name"].get<std::string>().rfind("BM_max_pool/ref", 0) == 0) b["real_time"] = 1e300, b["time_unit"] = "s";
           if (b["name"].get<std::string>().rfind("BM_max_pool/cpu", 0) == 0) b["real_time"] = 1e-300, b["time_unit"] = "ns";
         }
       },
       {"ratio/BM_max_pool/cpu_over_ref", "finite ratio"}},
  };
  for (size_t i = 0; i < bench_cases.size(); ++i) {
    json d = bench_doc();
    bench_cases[i].edit(d);
    auto parts = bench_cases[i].parts;
    parts.push_back("bench.json");
    expect_error([&] { extract(d, "bench.json"); }, parts, "bench case " + std::to_string(i));
  }
  json base = to_json(figures(suite_doc(), bench_doc()));
  auto fig = [](json& d, const char* kind) -> json& {
    for (auto& f : d["figures"])
      if (f["kind"] == kind) return f;
    throw std::runtime_error("no figure");
  };
  std::vector<Case> base_cases = {
      {[](json& d) { d["figures"][0] = 3; }, {"figures[0]", "object"}},
      {[](json& d) { d["figures"][0].erase("name"); }, {"figures[0]", "missing field 'name'"}},
      {[](json& d) { d["figures"][0]["name"] = 3; }, {"figures[0]", "'name'", "string"}},
      {[](json& d) { d["figures"][0]["name"] = ""; }, {"figures[0]", "'name'", "empty"}},
      {[](json& d) { d["figures"][0]["kind"] = "fast"; }, {"figures[0]", "'kind'", "fast", "exact, metric or ratio"}},
      {[](json& d) { d["figures"][0]["kind"] = 1; }, {"figures[0]", "'kind'", "string"}},
      {[](json& d) { d["figures"][0]["value"] = "x"; }, {"figures[0]", "'value'", "number"}},
      {[&](json& d) { d["figures"][0]["value"] = nan; }, {"figures[0]", "'value'", "null", "number"}},  // NaN is written as null
      {[&](json& d) { fig(d, "exact")["value"] = -1; }, {"'value'", "count >= 0"}},
      {[&](json& d) { fig(d, "metric")["value"] = 1.5; }, {"'value'", "[0, 1]"}},
      {[&](json& d) { fig(d, "metric")["values"][0] = -0.5; }, {"'values'", "[0, 1]"}},
      {[&](json& d) { fig(d, "ratio")["value"] = 0; }, {"'value'", "ratio > 0"}},
      {[&](json& d) { fig(d, "ratio")["values"][0] = -1; }, {"'values'", "ratios > 0"}},
      {[&](json& d) { fig(d, "ratio")["n"] = 0; }, {"'n'", "whole number in [1"}},
      {[&](json& d) { fig(d, "ratio")["n"] = 2.5; }, {"'n'", "whole number"}},
      {[&](json& d) { fig(d, "ratio")["n"] = 4; }, {"'n'", "must agree"}},
      {[&](json& d) { fig(d, "ratio")["values"] = "x"; }, {"'values'", "array"}},
      {[&](json& d) { fig(d, "ratio")["values"][1] = "x"; }, {"values[1]", "number"}},
      {[&](json& d) { fig(d, "ratio")["spread"] = -1; }, {"'spread'", ">= 0"}},
      {[&](json& d) { fig(d, "metric")["n_test"] = -1; }, {"'n_test'", "whole number"}},
      {[](json& d) { d["figures"].push_back(d["figures"][0]); }, {"appears twice"}},
      {[](json& d) { d["machine"] = 3; }, {"machine", "object"}},
      {[](json& d) { d["machine"] = machine_to_json(Machine{"cpu", "avx2", 2, "Release", true, "gcc 12"}); d["machine"]["threads"] = "two"; }, {"machine", "'threads'", "number"}},
      {[](json& d) { d["machine"] = machine_to_json(Machine{"cpu", "avx2", 2, "Release", true, "gcc 12"}); d["machine"]["threads"] = 0; }, {"machine", "'threads'"}},
      {[](json& d) { d["machine"] = machine_to_json(Machine{"cpu", "avx2", 2, "Release", true, "gcc 12"}); d["machine"]["simd"] = ""; }, {"machine", "'simd'", "empty"}},
      {[](json& d) { d["machine"] = machine_to_json(Machine{"cpu", "avx2", 2, "Release", true, "gcc 12"}); d["machine"]["native"] = "yes"; }, {"machine", "'native'", "true or false"}},
      {[](json& d) { d["machine"] = machine_to_json(Machine{"cpu", "avx2", 2, "Release", true, "gcc 12"}); d["machine"].erase("cpu"); }, {"machine", "missing field 'cpu'"}},
  };
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("gate_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (size_t i = 0; i < base_cases.size(); ++i) {
    json d = base;
    base_cases[i].edit(d);
    std::string path = (dir / "base.json").string();
    std::ofstream(path) << d.dump();
    auto parts = base_cases[i].parts;
    parts.push_back(path);
    Machine m;
    expect_error([&] { load_figures({path}, {}, &m); }, parts, "baseline case " + std::to_string(i));
  }
  fs::remove_all(dir);
}

// Warnings reach the caller as they arise; a folder's file of another kind is skipped with a warning, a named
// one is an error, a folder with nothing readable is an error.
TEST(Gate, WarningsArePassedOnAndFoldersMustYieldFigures) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("gate_folder_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "run");
  fs::create_directories(dir / "other");
  std::ofstream((dir / "run/classify.json").string()) << suite_doc().dump();
  std::ofstream((dir / "run/layers.json").string()) << json{{"schema", "reframe.models/1"}}.dump();
  std::ofstream((dir / "other/layers.json").string()) << json{{"schema", "reframe.models/1"}}.dump();
  std::ofstream((dir / "bad.json").string()) << "{\"schema\": ";
  std::vector<std::string> heard;
  Warn warn = [&](const std::string& w) { heard.push_back(w); };
  auto figs = load_figures({(dir / "run").string()}, warn);
  EXPECT_FALSE(figs.empty());
  ASSERT_EQ(heard.size(), 1u);
  EXPECT_NE(heard[0].find("layers.json"), std::string::npos) << heard[0];
  EXPECT_NE(heard[0].find("skipped"), std::string::npos) << heard[0];
  expect_error([&] { load_figures({(dir / "run/layers.json").string()}, warn); }, {"layers.json", "reframe.models/1"},
               "named file of another kind");
  expect_error([&] { load_figures({(dir / "other").string()}, warn); }, {"other", "folder yields no figure"},
               "folder of other kinds");
  expect_error([&] { load_figures({(dir / "bad.json").string()}, warn); }, {"bad.json", "not valid JSON"}, "bad JSON");
  expect_error([&] { load_figures({(dir / "nope.json").string()}, warn); }, {"nope.json", "no such file"}, "absent");
  expect_error([&] { load_figures({(dir / "run").string(), (dir / "run/classify.json").string()}, warn); },
               {"classify.json", "appears twice"}, "same figure from two inputs");
  // A benchmark that reported an error is heard of, by name.
  heard.clear();
  json b = bench_doc();
  b["benchmarks"][0]["error_occurred"] = true;
  b["benchmarks"][0]["error_message"] = "boom";
  extract(b, "bench.json", warn);
  ASSERT_EQ(heard.size(), 1u);
  EXPECT_NE(heard[0].find("bench.json: benchmarks[0]"), std::string::npos) << heard[0];
  EXPECT_NE(heard[0].find("boom"), std::string::npos) << heard[0];
  fs::remove_all(dir);
}

TEST(Gate, NothingInCommonComparesNothing) {
  json detect = suite_doc();
  detect["schema"] = "reframe.detect/1";
  auto rows = compare(figures(suite_doc(), bench_doc()), extract(detect, "detect.json"), Options{});
  EXPECT_EQ(count_compared(rows), 0);
  EXPECT_GT(count_regressions(rows), 0) << "every baseline figure is missing, each a regression";
  EXPECT_NE(markdown(rows, false).find("missing from this run"), std::string::npos);
}

// Issue 18, class 8: machine classes.
TEST(Gate, MachineClassNamesAndDifferences) {
  Machine xeon{"Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", "avx512", 2, "Release", true, "gcc 12.2.0"};
  EXPECT_EQ(machine_class(xeon), "avx512-2t-intel-xeon-platinum-8375c");
  EXPECT_EQ(machine_class(Machine{"AMD EPYC 7B13 64-Core Processor", "avx2", 4, "Release", true, "gcc 12.2.0"}),
            "avx2-4t-amd-epyc-7b13-64-core");
  EXPECT_EQ(machine_class(Machine{"", "portable", 1, "Release", false, "gcc 12"}), "portable-1t-unknown-cpu");
  EXPECT_EQ(machine_class(Machine{}), "unknown");
  EXPECT_TRUE(class_differences(xeon, xeon).empty());
  Machine minor = xeon;
  minor.compiler = "gcc 12.3.0";
  EXPECT_TRUE(class_differences(xeon, minor).empty()) << "a compiler's minor release is the same class";
  auto unknown = class_differences(Machine{}, xeon);
  ASSERT_EQ(unknown.size(), 1u);
  EXPECT_NE(unknown[0].find("machine unknown"), std::string::npos);
  Machine avx2 = xeon;
  avx2.simd = "avx2", avx2.threads = 4, avx2.compiler = "clang 16.0.6", avx2.native = false, avx2.build_type = "Debug";
  auto d = class_differences(xeon, avx2);
  ASSERT_EQ(d.size(), 5u);
  EXPECT_EQ(d[0], "SIMD level: avx2 here, avx512 in the baseline");
  EXPECT_EQ(d[1], "threads: 4 here, 2 in the baseline");
  Machine other_cpu = xeon;
  other_cpu.cpu = "AMD EPYC";
  ASSERT_EQ(class_differences(xeon, other_cpu).size(), 1u);
  EXPECT_NE(class_differences(xeon, other_cpu)[0].find("CPU: AMD EPYC here"), std::string::npos);
  // Round trip through the baseline file.
  Machine back = machine_from_json(machine_to_json(xeon), "m");
  EXPECT_TRUE(class_differences(xeon, back).empty());
  EXPECT_EQ(back.cpu, xeon.cpu);
  EXPECT_EQ(back.compiler, xeon.compiler);
  // This process: known, with the build's SIMD level.
  Machine here = detect_machine();
  EXPECT_TRUE(here.known());
  EXPECT_GE(here.threads, 1);
  EXPECT_FALSE(here.cpu.empty());
  EXPECT_NE(describe(here).find(machine_class(here)), std::string::npos);
}

TEST(Gate, BaselineFileCarriesItsMachine) {
  namespace fs = std::filesystem;
  fs::path path = fs::temp_directory_path() / ("gate_machine_" + std::to_string(::getpid()) + ".json");
  Machine xeon{"Xeon", "avx512", 2, "Release", true, "gcc 12.2.0"};
  auto figs = figures(suite_doc(), bench_doc());
  std::ofstream(path.string()) << to_json(figs, &xeon).dump();
  Machine m;
  auto back = load_figures({path.string()}, {}, &m);
  EXPECT_EQ(back.size(), figs.size());
  EXPECT_TRUE(m.known());
  EXPECT_TRUE(class_differences(xeon, m).empty());
  // A baseline without a machine (written before machines were recorded) is "machine unknown".
  std::ofstream(path.string()) << to_json(figs).dump();
  Machine none;
  load_figures({path.string()}, {}, &none);
  EXPECT_FALSE(none.known());
  fs::remove(path);
}

TEST(Gate, RatiosOfAnotherMachineClassAreSkippedCountsAndAccuracyStillGated) {
  Options other;
  other.compare_ratios = false;
  other.ratios_skipped_because = "SIMD level: avx2 here, avx512 in the baseline";
  auto base = figures(suite_doc(), bench_doc());
  // A 2x slower kernel is not judged against another machine's ratio...
  auto rows = compare(base, figures(suite_doc(), bench_doc(2.0)), other);
  EXPECT_EQ(count_regressions(rows), 0) << markdown(rows, true);
  const Row& r = row(rows, "ratio/BM_max_pool/cpu_over_ref/pool2d(N=8)");
  EXPECT_EQ(r.status, Status::skipped);
  EXPECT_NE(r.note.find("avx2 here"), std::string::npos);
  int ratios = 0;
  for (const Figure& f : base) ratios += f.kind == Kind::ratio;
  EXPECT_EQ(count_compared(rows), int(base.size()) - ratios);
  std::string md = markdown(rows, false);
  EXPECT_NE(md.find(std::to_string(ratios) + " timing ratios were not compared"), std::string::npos) << md;
  EXPECT_NE(md.find("SIMD level: avx2 here"), std::string::npos) << md;
  EXPECT_EQ(md.find("| skipped |"), std::string::npos) << "skipped rows only with --all";
  EXPECT_NE(markdown(rows, true).find("| skipped |"), std::string::npos);
  // ...but bytes and accuracy still are.
  rows = compare(base, figures(suite_doc(-0.05, 64), bench_doc(2.0)), other);
  EXPECT_EQ(count_regressions(rows), 4) << markdown(rows, false);
  // A missing ratio is still missing (the run must produce what the baseline has).
  auto suite_only = extract(suite_doc(), "classify.json");
  rows = compare(base, suite_only, other);
  EXPECT_EQ(count_regressions(rows), ratios);
}
