// reframe gate: figures extracted from suite results and Google Benchmark JSON; an unchanged run passes; each
// kind of injected regression (more bytes, a slower kernel, lower accuracy, a missing figure) fails with its
// row named; noise margins follow suites/gate.h.
#include <gtest/gtest.h>

#include <cmath>

#include "host/core/check.h"
#include "suites/gate.h"

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
  auto a = extract(suite, "classify.json", nullptr), b = extract(bench, "bench.json", nullptr);
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

TEST(Gate, BadInputNamesFileAndField) {
  json suite = suite_doc();
  suite["models"][1].erase("macs");
  try {
    extract(suite, "run/classify.json", nullptr);
    FAIL() << "expected an error";
  } catch (const rf::Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("run/classify.json"), std::string::npos) << m;
    EXPECT_NE(m.find("macs"), std::string::npos) << m;
    EXPECT_NE(m.find("nl-resnet18-dw"), std::string::npos) << m;
  }
  json bad = bench_doc();
  bad["benchmarks"][0]["real_time"] = "fast";
  EXPECT_THROW(extract(bad, "bench.json", nullptr), rf::Error);
  std::vector<std::string> warnings;
  EXPECT_TRUE(extract(json{{"hello", 1}}, "other.json", &warnings).empty());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("other.json"), std::string::npos);
}
