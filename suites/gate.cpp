// reframe gate: figure extraction from suite results and Google Benchmark JSON, and the comparison with a
// baseline under the noise model documented in suites/gate.h. Checked by tests/train/test_gate.cpp.
#include "suites/gate.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "host/core/check.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace rf::gate {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::exact: return "exact";
    case Kind::metric: return "metric";
    case Kind::ratio: return "ratio";
  }
  return "?";
}

const char* status_name(Status s) {
  switch (s) {
    case Status::ok: return "ok";
    case Status::improved: return "improved";
    case Status::changed: return "CHANGED";
    case Status::regressed: return "REGRESSED";
    case Status::missing: return "MISSING";
    case Status::added: return "new";
  }
  return "?";
}

namespace {

Kind parse_kind(const std::string& s, const std::string& where) {
  if (s == "exact") return Kind::exact;
  if (s == "metric") return Kind::metric;
  if (s == "ratio") return Kind::ratio;
  RF_FAIL("{}: field 'kind' is '{}', expected exact, metric or ratio", where, s);
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Robust relative deviation of a sample around its median: 1.4826 * MAD / median (the 1.4826 makes MAD an
// estimate of the standard deviation for normal noise; one outlier repetition barely moves it).
double robust_rel_spread(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  double m = median(v);
  std::vector<double> dev;
  for (double x : v) dev.push_back(std::fabs(x - m));
  return m > 0 ? 1.4826 * median(dev) / m : 0;
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / double(v.size());
}

// Accuracy-like per-model fields of the suites: the test figures only (validation guides training).
bool is_gated_metric(const std::string& key) {
  for (const char* p : {"test_acc", "map50", "map_coco", "miou", "pixel_acc"})
    if (key.rfind(p, 0) == 0) return true;
  return false;
}

const json& need(const json& j, const char* key, const std::string& where) {
  RF_CHECK(j.is_object() && j.contains(key), "{}: missing field '{}'", where, key);
  return j.at(key);
}

double need_number(const json& j, const char* key, const std::string& where) {
  const json& v = need(j, key, where);
  RF_CHECK(v.is_number(), "{}: field '{}' is {}, expected a number", where, key, v.dump());
  return v.get<double>();
}

void extract_suite(const json& j, const std::string& task, const std::string& src, std::vector<Figure>& out) {
  int64_t n_test = 0;
  if (j.contains("dataset") && j["dataset"].contains("test") && j["dataset"]["test"].is_number())
    n_test = j["dataset"]["test"].get<int64_t>();
  const json& models = need(j, "models", src);
  RF_CHECK(models.is_array(), "{}: field 'models' must be an array", src);
  for (size_t i = 0; i < models.size(); ++i) {
    const json& m = models[i];
    std::string where = fmt::format("{}: models[{}]", src, i);
    const json& name_j = need(m, "model", where);
    RF_CHECK(name_j.is_string(), "{}: field 'model' must be a string", where);
    std::string name = name_j.get<std::string>();
    where += " (" + name + ")";
    std::string base = task + "/" + name + "/";
    for (const char* key : {"learnable_params", "seeded_weights", "bn_state", "macs", "pool_window_reads"}) {
      if (!m.contains(key) && std::string(key) != "macs" && std::string(key) != "learnable_params") continue;
      Figure f;
      f.name = base + key, f.kind = Kind::exact, f.value = need_number(m, key, where), f.source = src;
      out.push_back(f);
    }
    const json& pb = need(m, "package_bytes", where);
    RF_CHECK(pb.is_object(), "{}: field 'package_bytes' must be an object {{dtype: bytes}}", where);
    for (auto& [dtype, v] : pb.items()) {
      RF_CHECK(v.is_number(), "{}: package_bytes.{} is {}, expected a number", where, dtype, v.dump());
      Figure f;
      f.name = base + "package_bytes/" + dtype, f.kind = Kind::exact, f.value = v.get<double>(), f.source = src;
      out.push_back(f);
    }
    for (auto& [key, v] : m.items()) {
      if (!is_gated_metric(key) || !v.is_object()) continue;
      std::string w = where + "." + key;
      Figure f;
      f.name = base + key, f.kind = Kind::metric, f.source = src, f.n_test = n_test;
      const json& vals = need(v, "values", w);
      RF_CHECK(vals.is_array() && !vals.empty(), "{}: field 'values' must be a non-empty array of numbers", w);
      for (const json& x : vals) {
        RF_CHECK(x.is_number(), "{}: values holds {}, expected numbers", w, x.dump());
        f.values.push_back(x.get<double>());
      }
      f.value = mean_of(f.values);
      f.n = int64_t(f.values.size());
      f.spread = v.contains("std") && v["std"].is_number() ? v["std"].get<double>() : 0;
      out.push_back(f);
    }
  }
  // Suite throughputs are single measurements taken one model after the other (no repetitions to model
  // their noise: the same ratio read 1.87x and 1.10x in two runs): timing ratios come from the benchmark
  // binaries' interleaved repetitions only.
}

double to_seconds(double t, const std::string& unit) {
  if (unit == "ns") return t * 1e-9;
  if (unit == "us") return t * 1e-6;
  if (unit == "ms") return t * 1e-3;
  if (unit == "s") return t;
  RF_FAIL("time_unit '{}', expected ns, us, ms or s", unit);
}

// The denominators of benchmark ratios, by the implementation (second name part) they carry.
const char* kDenominators[] = {"ref", "resnet18", "materialized", "cudnn", "curand", "unfused"};

void extract_benchmarks(const json& j, const std::string& src, std::vector<Figure>& out) {
  const json& list = need(j, "benchmarks", src);
  RF_CHECK(list.is_array(), "{}: field 'benchmarks' must be an array", src);
  // (op, rest) -> impl -> per-repetition seconds, in repetition order.
  std::map<std::pair<std::string, std::string>, std::map<std::string, std::vector<std::pair<int64_t, double>>>> groups;
  for (size_t i = 0; i < list.size(); ++i) {
    const json& b = list[i];
    std::string where = fmt::format("{}: benchmarks[{}]", src, i);
    if (b.contains("run_type") && b["run_type"] != "iteration") continue;  // aggregates: we compute our own
    if (b.contains("error_occurred") && b["error_occurred"].is_boolean() && b["error_occurred"].get<bool>()) continue;
    std::string name = b.contains("run_name") ? b["run_name"].get<std::string>() : need(b, "name", where).get<std::string>();
    double t = need_number(b, "real_time", where);
    std::string unit = b.contains("time_unit") ? b["time_unit"].get<std::string>() : "ns";
    int64_t rep = b.contains("repetition_index") ? b["repetition_index"].get<int64_t>() : -1;
    size_t s1 = name.find('/');
    if (s1 == std::string::npos) continue;
    size_t s2 = name.find('/', s1 + 1);
    std::string op = name.substr(0, s1);
    std::string impl = name.substr(s1 + 1, s2 == std::string::npos ? std::string::npos : s2 - s1 - 1);
    std::string rest = s2 == std::string::npos ? "" : name.substr(s2 + 1);
    groups[{op, rest}][impl].push_back({rep, to_seconds(t, unit)});
  }
  for (auto& [key, impls] : groups) {
    for (const char* d : kDenominators) {
      auto dit = impls.find(d);
      if (dit == impls.end()) continue;
      auto den = dit->second;
      std::sort(den.begin(), den.end());
      for (auto& [impl, times] : impls) {
        if (impl == d || impl == "ref") continue;  // a reference is a denominator only
        auto num = times;
        std::sort(num.begin(), num.end());
        Figure f;
        f.name = fmt::format("ratio/{}/{}_over_{}{}{}", key.first, impl, d, key.second.empty() ? "" : "/", key.second);
        f.kind = Kind::ratio, f.source = src;
        size_t n = std::min(num.size(), den.size());
        for (size_t r = 0; r < n; ++r)
          if (num[r].second > 0) f.values.push_back(den[r].second / num[r].second);
        if (f.values.empty()) continue;
        f.value = median(f.values);
        f.spread = robust_rel_spread(f.values);
        f.n = int64_t(f.values.size());
        out.push_back(f);
      }
    }
  }
}

}  // namespace

std::vector<Figure> extract(const json& j, const std::string& source, std::vector<std::string>* warnings) {
  std::vector<Figure> out;
  if (j.is_object() && j.contains("schema") && j["schema"].is_string()) {
    std::string schema = j["schema"].get<std::string>();
    if (schema == "reframe.gate/1") return from_json(j, source);
    for (const char* task : {"classify", "detect", "segment"}) {
      if (schema == fmt::format("reframe.{}/1", task)) {
        extract_suite(j, task, source, out);
        return out;
      }
    }
  }
  if (j.is_object() && j.contains("benchmarks") && j.contains("context")) {
    extract_benchmarks(j, source, out);
    return out;
  }
  if (warnings) warnings->push_back(source + ": not suite results nor Google Benchmark JSON; ignored");
  return out;
}

std::vector<Figure> load_figures(const std::vector<std::string>& paths, std::vector<std::string>* warnings) {
  std::vector<std::string> files;
  for (const std::string& p : paths) {
    RF_CHECK(fs::exists(p), "{}: no such file or folder", p);
    if (fs::is_directory(p)) {
      std::vector<std::string> found;
      for (auto& e : fs::directory_iterator(p))
        if (e.is_regular_file() && e.path().extension() == ".json") found.push_back(e.path().string());
      std::sort(found.begin(), found.end());
      RF_CHECK(!found.empty(), "{}: folder holds no .json results", p);
      files.insert(files.end(), found.begin(), found.end());
    } else {
      files.push_back(p);
    }
  }
  std::vector<Figure> out;
  std::set<std::string> seen;
  for (const std::string& f : files) {
    std::ifstream in(f);
    RF_CHECK(in, "{}: cannot open", f);
    json j;
    try {
      j = json::parse(in);
    } catch (const json::exception& e) {
      RF_FAIL("{}: not valid JSON ({})", f, e.what());
    }
    for (Figure& fig : extract(j, f, warnings)) {
      RF_CHECK(seen.insert(fig.name).second, "{}: figure '{}' also comes from another input file", f, fig.name);
      out.push_back(std::move(fig));
    }
  }
  return out;
}

json to_json(const std::vector<Figure>& figs) {
  json list = json::array();
  for (const Figure& f : figs) {
    json e = {{"name", f.name}, {"kind", kind_name(f.kind)}, {"value", f.value}};
    if (f.kind != Kind::exact) {
      e["spread"] = f.spread;
      e["n"] = f.n;
      e["values"] = f.values;
    }
    if (f.kind == Kind::metric) e["n_test"] = f.n_test;
    list.push_back(e);
  }
  return {{"schema", "reframe.gate/1"}, {"figures", list}};
}

std::vector<Figure> from_json(const json& j, const std::string& source) {
  std::vector<Figure> out;
  const json& list = need(j, "figures", source);
  RF_CHECK(list.is_array(), "{}: field 'figures' must be an array", source);
  for (size_t i = 0; i < list.size(); ++i) {
    std::string where = fmt::format("{}: figures[{}]", source, i);
    const json& e = list[i];
    Figure f;
    f.name = need(e, "name", where).get<std::string>();
    f.kind = parse_kind(need(e, "kind", where).get<std::string>(), where);
    f.value = need_number(e, "value", where);
    if (e.contains("spread")) f.spread = need_number(e, "spread", where);
    if (e.contains("n")) f.n = int64_t(need_number(e, "n", where));
    if (e.contains("n_test")) f.n_test = int64_t(need_number(e, "n_test", where));
    if (e.contains("values")) f.values = e["values"].get<std::vector<double>>();
    RF_CHECK(f.n >= 1, "{}: field 'n' must be >= 1", where);
    f.source = source;
    out.push_back(f);
  }
  return out;
}

namespace {

double metric_sigma(const Figure& f) {
  double p = std::clamp(f.value, 0.0, 1.0);
  double binom = f.n_test > 0 ? std::sqrt(p * (1 - p) / double(f.n_test)) : 0;
  return std::max(f.spread, binom);
}

}  // namespace

namespace {

// ratio rule: relative drop against max(z * sigma of the difference, floor)
void compare_ratio(const Figure& b, const Figure& c, const Options& o, Row* r) {
  double sd = std::sqrt(b.spread * b.spread / double(b.n) + c.spread * c.spread / double(c.n));
  r->current = c.value;
  r->allowed = std::max(o.z * sd, o.ratio_floor);
  double rel = b.value > 0 ? (b.value - c.value) / b.value : 0;
  r->status = rel > r->allowed ? Status::regressed : -rel > r->allowed ? Status::improved : Status::ok;
  r->note = fmt::format("reps {} vs {}, spread {:.1f}% vs {:.1f}%", b.n, c.n, 100 * b.spread, 100 * c.spread);
}

}  // namespace

std::vector<Row> compare(const std::vector<Figure>& baseline, const std::vector<Figure>& current, const Options& o,
                         const std::vector<Figure>* confirm) {
  std::map<std::string, const Figure*> cur, again;
  for (const Figure& f : current) cur[f.name] = &f;
  if (confirm)
    for (const Figure& f : *confirm) again[f.name] = &f;
  std::set<std::string> in_base;
  std::vector<Row> rows;
  for (const Figure& b : baseline) {
    in_base.insert(b.name);
    Row r;
    r.name = b.name, r.kind = b.kind, r.baseline = b.value;
    auto it = cur.find(b.name);
    if (it == cur.end()) {
      r.status = Status::missing;
      r.note = "in the baseline, not in this run";
      rows.push_back(r);
      continue;
    }
    const Figure& c = *it->second;
    r.current = c.value;
    RF_CHECK(c.kind == b.kind, "{}: kind {} in this run, {} in the baseline", b.name, kind_name(c.kind), kind_name(b.kind));
    switch (b.kind) {
      case Kind::exact: {
        r.allowed = o.tolerance * std::fabs(b.value);
        if (std::fabs(c.value - b.value) > r.allowed) {
          r.status = Status::changed;
          r.note = "deterministic figure changed: regenerate the baseline if intended";
        }
        break;
      }
      case Kind::metric: {
        double sb = metric_sigma(b), sc = metric_sigma(c);
        double sd = std::sqrt(sb * sb / double(b.n) + sc * sc / double(c.n));
        r.allowed = std::max(o.z * sd, o.metric_floor);
        double drop = b.value - c.value;
        if (drop > r.allowed) r.status = Status::regressed;
        else if (-drop > r.allowed) r.status = Status::improved;
        r.note = fmt::format("seeds {} vs {}, sigma {:.4f} vs {:.4f}", b.n, c.n, sb, sc);
        break;
      }
      case Kind::ratio: {
        compare_ratio(b, c, o, &r);
        auto a = again.find(b.name);
        if (r.status == Status::regressed && a != again.end()) {
          RF_CHECK(a->second->kind == Kind::ratio, "{}: kind {} in the confirming run, ratio in the baseline", b.name,
                   kind_name(a->second->kind));
          double first = r.current;
          auto pct = [&](double v) { return b.value > 0 ? 100 * (v - b.value) / b.value : 0.0; };
          compare_ratio(b, *a->second, o, &r);
          r.remeasured = true;
          r.note = fmt::format("{}; measured twice: {:+.1f} % then {:+.1f} %{}", r.note, pct(first), pct(r.current),
                               r.status == Status::regressed ? " (both regress)" : " (the first was noise)");
        }
        break;
      }
    }
    rows.push_back(r);
  }
  for (const Figure& c : current) {
    if (in_base.count(c.name)) continue;
    Row r;
    r.name = c.name, r.kind = c.kind, r.status = Status::added, r.current = c.value;
    r.note = "not in the baseline";
    rows.push_back(r);
  }
  return rows;
}

int count_regressions(const std::vector<Row>& rows) {
  int n = 0;
  for (const Row& r : rows)
    n += r.status == Status::regressed || r.status == Status::changed || r.status == Status::missing;
  return n;
}

namespace {

std::string fmt_value(Kind k, double v) {
  switch (k) {
    case Kind::exact: {
      std::string s = fmt::format("{:.0f}", v), out;
      int c = 0;
      for (size_t i = s.size(); i-- > 0;) {
        out.insert(out.begin(), s[i]);
        if (++c % 3 == 0 && i > 0 && s[i - 1] != '-') out.insert(out.begin(), ',');
      }
      return out;
    }
    case Kind::metric: return fmt::format("{:.2f} %", 100 * v);
    case Kind::ratio: return fmt::format("{:.3f}x", v);
  }
  return "";
}

std::string fmt_change(const Row& r) {
  if (r.status == Status::missing || r.status == Status::added) return "";
  switch (r.kind) {
    case Kind::exact: {
      double d = r.current - r.baseline;
      return d == 0 ? "0" : fmt::format("{:+.0f} ({:+.3f} %)", d, r.baseline ? 100 * d / r.baseline : 0.0);
    }
    case Kind::metric: return fmt::format("{:+.2f} pt", 100 * (r.current - r.baseline));
    case Kind::ratio: return fmt::format("{:+.1f} %", r.baseline ? 100 * (r.current - r.baseline) / r.baseline : 0.0);
  }
  return "";
}

std::string fmt_allowed(const Row& r) {
  if (r.status == Status::missing || r.status == Status::added) return "";
  switch (r.kind) {
    case Kind::exact: return r.allowed == 0 ? "exact" : fmt::format("±{:.0f}", r.allowed);
    case Kind::metric: return fmt::format("-{:.2f} pt", 100 * r.allowed);
    case Kind::ratio: return fmt::format("-{:.0f} %", 100 * r.allowed);
  }
  return "";
}

}  // namespace

std::string markdown(const std::vector<Row>& rows, bool all) {
  int bad = count_regressions(rows), improved = 0, added = 0;
  for (const Row& r : rows) improved += r.status == Status::improved, added += r.status == Status::added;
  int remeasured = 0;
  for (const Row& r : rows) remeasured += r.remeasured;
  std::string s = fmt::format("## reframe gate: {} regression{} in {} figures ({} improved, {} new{})\n\n", bad,
                              bad == 1 ? "" : "s", rows.size(), improved, added,
                              remeasured ? fmt::format(", {} measured twice", remeasured) : std::string());
  std::string table =
      "| status | figure | kind | baseline | current | change | allowed drop | note |\n"
      "|---|---|---|---:|---:|---:|---:|---|\n";
  int shown = 0;
  for (const Row& r : rows) {
    if (!all && r.status == Status::ok && !r.remeasured) continue;
    ++shown;
    table += fmt::format("| {} | `{}` | {} | {} | {} | {} | {} | {} |\n", status_name(r.status), r.name,
                         kind_name(r.kind), r.status == Status::added ? "" : fmt_value(r.kind, r.baseline),
                         r.status == Status::missing ? "" : fmt_value(r.kind, r.current), fmt_change(r),
                         fmt_allowed(r), r.note);
  }
  if (shown) s += table;
  else s += "Every figure is within its margin.\n";
  return s;
}

}  // namespace rf::gate
