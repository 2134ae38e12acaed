// reframe gate: figure extraction from suite results and Google Benchmark JSON, and the comparison with a
// baseline under the noise model documented in gate/gate.h. Checked by tests/gate/test_gate.cpp.
#include "gate/gate.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "host/core/check.h"
#include "host/core/enum_name.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace rf::gate {

const char* kind_name(Kind k) {
  static constexpr const char* kNames[] = {"exact", "metric", "ratio"};  // Kind order
  return enum_name(k, kNames);
}

const char* status_name(Status s) {
  // Status order (gate.h); the upper-case ones are the rows a reader must not miss.
  static constexpr const char* kNames[] = {"ok", "improved", "CHANGED", "REGRESSED", "MISSING", "new", "skipped"};
  return enum_name(s, kNames);
}

namespace {

// A JSON value as it appears in the file, cut short for messages. Containers are described, not dumped: a
// hostile file may nest them deeply or make them huge.
std::string show(const json& v) {
  if (v.is_object()) return v.empty() ? "{}" : fmt::format("{{...}} (an object of {} fields)", v.size());
  if (v.is_array()) return v.empty() ? "[]" : fmt::format("[...] (an array of {} items)", v.size());
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

std::string field(const std::string& where, const std::string& key) {
  return fmt::format("{}: field '{}'", where, key);
}

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
  return n % 2 ? v[n / 2] : v[n / 2 - 1] + 0.5 * (v[n / 2] - v[n / 2 - 1]);  // no overflow near DBL_MAX
}

// Robust relative deviation of a sample around its median: 1.4826 * MAD / median (the 1.4826 makes MAD an
// estimate of the standard deviation for normal noise; one outlier repetition barely moves it).
double robust_rel_spread(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  double m = median(v);
  std::vector<double> dev;
  for (double x : v) dev.push_back(std::fabs(x - m));
  return m > 0 ? 1.4826 * (median(dev) / m) : 0;
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
  RF_CHECK(j.is_object(), "{} is {}, expected an object", where, show(j));
  RF_CHECK(j.contains(key), "{}: missing field '{}'", where, key);
  return j.at(key);
}

std::string need_string(const json& j, const char* key, const std::string& where) {
  const json& v = need(j, key, where);
  RF_CHECK(v.is_string(), "{} is {}, expected a string", field(where, key), show(v));
  return v.get<std::string>();
}

// `what` names the value ("f.json: models[0]: field 'macs'"). JSON text cannot hold NaN or infinities (the
// parser refuses 1e400), but a document built in memory can: checked all the same.
double finite(const json& v, const std::string& what) {
  RF_CHECK(v.is_number(), "{} is {}, expected a number", what, show(v));
  double d = v.get<double>();
  RF_CHECK(std::isfinite(d), "{} is {}, expected a finite number", what, d);
  return d;
}

double need_number(const json& j, const char* key, const std::string& where) {
  return finite(need(j, key, where), field(where, key));
}

// A count: a whole number in [0, 2^53] (exact in a double).
double count(const json& v, const std::string& what) {
  double d = finite(v, what);
  RF_CHECK(d >= 0 && d == std::floor(d) && d <= 9007199254740992.0, "{} is {}, expected a whole number >= 0", what,
           show(v));
  return d;
}

int64_t whole(const json& v, const std::string& what, int64_t lo, int64_t hi) {
  double d = count(v, what);
  RF_CHECK(d >= double(lo) && d <= double(hi), "{} is {}, expected a whole number in [{}, {}]", what, show(v), lo, hi);
  return int64_t(d);
}

// A mean/std/values object of a suite (accuracy-like, in [0, 1]).
Figure metric_figure(const json& v, const std::string& w) {
  RF_CHECK(v.is_object(), "{} is {}, expected an object {{mean, std, values}}", w, show(v));
  Figure f;
  f.kind = Kind::metric;
  const json& vals = need(v, "values", w);
  RF_CHECK(vals.is_array() && !vals.empty(), "{} is {}, expected a non-empty array of numbers in [0, 1]",
           field(w, "values"), show(vals));
  for (size_t k = 0; k < vals.size(); ++k) {
    std::string what = fmt::format("{}: values[{}]", w, k);
    double x = finite(vals[k], what);
    RF_CHECK(x >= 0 && x <= 1, "{} is {}, expected a fraction in [0, 1]", what, show(vals[k]));
    f.values.push_back(x);
  }
  f.value = mean_of(f.values);
  f.n = int64_t(f.values.size());
  if (v.contains("std")) {
    f.spread = finite(v.at("std"), field(w, "std"));
    RF_CHECK(f.spread >= 0, "{} is {}, expected a standard deviation >= 0", field(w, "std"), f.spread);
  }
  return f;
}

void extract_suite(const json& j, const std::string& task, const std::string& src, std::vector<Figure>& out) {
  int64_t n_test = 0;
  if (j.contains("dataset")) {
    const json& d = j.at("dataset");
    RF_CHECK(d.is_object(), "{} is {}, expected an object", field(src, "dataset"), show(d));
    if (d.contains("test")) n_test = whole(d.at("test"), src + ": dataset.test", 0, int64_t(1) << 40);
  }
  const json& models = need(j, "models", src);
  RF_CHECK(models.is_array() && !models.empty(),
           "{} is {}, expected a non-empty array of models (a {} run without models compares nothing)",
           field(src, "models"), show(models), task);
  for (size_t i = 0; i < models.size(); ++i) {
    const json& m = models[i];
    std::string where = fmt::format("{}: models[{}]", src, i);
    std::string name = need_string(m, "model", where);
    RF_CHECK(!name.empty(), "{} is empty, expected a model name", field(where, "model"));
    where += " (" + name + ")";
    std::string base = task + "/" + name + "/";
    for (const char* key : {"learnable_params", "seeded_weights", "bn_state", "macs", "pool_window_reads"}) {
      bool required = std::string(key) == "macs" || std::string(key) == "learnable_params";
      if (!required && !m.contains(key)) continue;
      Figure f;
      f.name = base + key, f.kind = Kind::exact, f.source = src;
      f.value = count(need(m, key, where), field(where, key));
      out.push_back(f);
    }
    const json& pb = need(m, "package_bytes", where);
    RF_CHECK(pb.is_object() && !pb.empty(), "{} is {}, expected an object {{dtype: bytes}} with at least one dtype",
             field(where, "package_bytes"), show(pb));
    for (auto& [dtype, v] : pb.items()) {
      Figure f;
      f.name = base + "package_bytes/" + dtype, f.kind = Kind::exact, f.source = src;
      f.value = count(v, fmt::format("{}: package_bytes.{}", where, dtype));
      out.push_back(f);
    }
    for (auto& [key, v] : m.items()) {
      if (!is_gated_metric(key)) continue;
      Figure f = metric_figure(v, where + "." + key);
      f.name = base + key, f.source = src, f.n_test = n_test;
      out.push_back(f);
    }
  }
  // Suite throughputs are single measurements taken one model after the other (no repetitions to model
  // their noise: the same ratio read 1.87x and 1.10x in two runs): timing ratios come from the benchmark
  // binaries' interleaved repetitions only.
}

double to_seconds(double t, const std::string& unit, const std::string& where) {
  if (unit == "ns") return t * 1e-9;
  if (unit == "us") return t * 1e-6;
  if (unit == "ms") return t * 1e-3;
  if (unit == "s") return t;
  RF_FAIL("{}: field 'time_unit' is '{}', expected ns, us, ms or s", where, unit);
}

// The denominators of benchmark ratios, by the implementation (second name part) they carry.
const char* kDenominators[] = {"ref", "resnet18", "materialized", "cudnn", "curand", "unfused"};

void extract_benchmarks(const json& j, const std::string& src, const Warn& warn, std::vector<Figure>& out) {
  RF_CHECK(j.at("context").is_object(), "{} is {}, expected an object", field(src, "context"), show(j.at("context")));
  const json& list = need(j, "benchmarks", src);
  RF_CHECK(list.is_array(), "{} is {}, expected an array", field(src, "benchmarks"), show(list));
  // (op, rest) -> impl -> per-repetition seconds, in repetition order.
  std::map<std::pair<std::string, std::string>, std::map<std::string, std::vector<std::pair<int64_t, double>>>> groups;
  for (size_t i = 0; i < list.size(); ++i) {
    const json& b = list[i];
    std::string where = fmt::format("{}: benchmarks[{}]", src, i);
    RF_CHECK(b.is_object(), "{} is {}, expected an object", where, show(b));
    if (b.contains("run_type") && need_string(b, "run_type", where) != "iteration") continue;  // aggregates: ours
    std::string name = b.contains("run_name") ? need_string(b, "run_name", where) : need_string(b, "name", where);
    if (b.contains("error_occurred")) {
      const json& e = b.at("error_occurred");
      RF_CHECK(e.is_boolean(), "{} is {}, expected true or false", field(where, "error_occurred"), show(e));
      if (e.get<bool>()) {
        std::string msg = b.contains("error_message") ? show(b.at("error_message")) : "no message";
        if (warn) warn(fmt::format("{} ({}): the benchmark reported an error ({}); no timing from it", where, name, msg));
        continue;
      }
    }
    double t = need_number(b, "real_time", where);
    RF_CHECK(t > 0, "{} is {}, expected a time > 0", field(where, "real_time"), show(b.at("real_time")));
    std::string unit = b.contains("time_unit") ? need_string(b, "time_unit", where) : "ns";
    int64_t rep = b.contains("repetition_index")
                      ? whole(b.at("repetition_index"), field(where, "repetition_index"), 0, int64_t(1) << 40)
                      : -1;
    size_t s1 = name.find('/');
    if (s1 == std::string::npos) continue;  // not "op/impl/...": no twin to divide by
    size_t s2 = name.find('/', s1 + 1);
    std::string op = name.substr(0, s1);
    std::string impl = name.substr(s1 + 1, s2 == std::string::npos ? std::string::npos : s2 - s1 - 1);
    std::string rest = s2 == std::string::npos ? "" : name.substr(s2 + 1);
    groups[{op, rest}][impl].push_back({rep, to_seconds(t, unit, where)});
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
        for (size_t r = 0; r < n; ++r) {
          double q = den[r].second / num[r].second;  // both > 0 and finite; the quotient may still overflow
          RF_CHECK(std::isfinite(q) && q > 0, "{}: {}: repetition {} gives the ratio {}, expected a finite ratio > 0",
                   src, f.name, r, q);
          f.values.push_back(q);
        }
        f.value = median(f.values);
        f.spread = robust_rel_spread(f.values);
        f.n = int64_t(f.values.size());
        out.push_back(f);
      }
    }
  }
}

enum class InputKind { baseline, suite, benchmark, other };

InputKind input_kind(const json& j, std::string* task) {
  if (!j.is_object()) return InputKind::other;
  if (j.contains("schema")) {
    const json& s = j.at("schema");
    if (!s.is_string()) return InputKind::other;
    std::string schema = s.get<std::string>();
    if (schema == "reframe.gate/1") return InputKind::baseline;
    for (const char* t : {"classify", "detect", "segment"})
      if (schema == fmt::format("reframe.{}/1", t)) {
        if (task) *task = t;
        return InputKind::suite;
      }
    return InputKind::other;
  }
  if (j.contains("benchmarks") && j.contains("context")) return InputKind::benchmark;
  return InputKind::other;
}

constexpr uintmax_t kMaxInputBytes = uintmax_t(64) << 20;

const char* kKnownKinds =
    "expected suite results (schema reframe.classify/1, reframe.detect/1 or reframe.segment/1), Google Benchmark "
    "JSON (an object with 'benchmarks' and 'context') or a gate baseline (schema reframe.gate/1)";

std::string json_type(const json& j) {
  if (j.is_object()) return j.contains("schema") ? fmt::format("an object with schema {}", show(j.at("schema")))
                                                 : std::string("an object without 'schema' nor 'benchmarks'");
  return fmt::format("a JSON {} ({})", j.type_name(), show(j));
}

}  // namespace

std::vector<Figure> extract(const json& j, const std::string& source, const Warn& warn) {
  std::vector<Figure> out;
  std::string task;
  switch (input_kind(j, &task)) {
    case InputKind::baseline:
      out = from_json(j, source);
      if (j.contains("machine")) (void)machine_from_json(j.at("machine"), source + ": machine");
      break;
    case InputKind::suite:
      // A part of a sharded run (--shard I/N; suites/merge.h) holds some seeds only: its mean ± std are not the run's.
      RF_CHECK(!j.contains("shard"), "{}: one part of a suite run spread with --shard ({}); combine every part with "
               "`reframe merge PART.json... -o OUT.json` and gate the merged file", source, j["shard"].dump());
      extract_suite(j, task, source, out);
      break;
    case InputKind::benchmark:
      extract_benchmarks(j, source, warn, out);
      // Legitimate (a run of kernels without their references) but nothing to gate: said at once; the inputs
      // as a whole must still yield a figure (load_figures).
      if (out.empty() && warn)
        warn(fmt::format("{}: Google Benchmark JSON without a timing ratio (no twins such as BM_x/ref/... and "
                         "BM_x/cpu/... among its iteration runs without errors): nothing gated from it",
                         source));
      return out;
    case InputKind::other:
      RF_FAIL("{}: {} is not something the gate reads; {}", source, json_type(j), kKnownKinds);
  }
  RF_CHECK(!out.empty(), "{}: yields no figure; {}", source, kKnownKinds);
  return out;
}

std::vector<Figure> load_figures(const std::vector<std::string>& paths, const Warn& warn, Machine* machine) {
  RF_CHECK(!paths.empty(), "gate: no input file or folder given");
  struct Input {
    std::string path, folder;  // folder: the folder it was found in ("" when named)
  };
  std::vector<Input> files;
  for (const std::string& p : paths) {
    std::error_code ec;
    fs::file_status st = fs::status(p, ec);
    RF_CHECK(!ec && fs::exists(st), "{}: no such file or folder", p);
    if (fs::is_directory(st)) {
      std::vector<std::string> found;
      for (auto it = fs::directory_iterator(p, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
        std::error_code ec2;
        if (it->path().extension() == ".json" && fs::is_regular_file(it->path(), ec2)) found.push_back(it->path().string());
      }
      RF_CHECK(!ec, "{}: cannot list the folder ({})", p, ec.message());
      std::sort(found.begin(), found.end());
      RF_CHECK(!found.empty(), "{}: folder holds no .json results", p);
      for (const std::string& f : found) files.push_back({f, p});
    } else {
      RF_CHECK(fs::is_regular_file(st), "{}: not a regular file; expected a .json results file or a folder", p);
      files.push_back({p, ""});
    }
  }
  std::vector<Figure> out;
  std::map<std::string, std::string> seen;  // figure -> file
  std::map<std::string, size_t> per_folder;
  for (const Input& in : files) {
    // Results files are kilobytes to a few megabytes; a parsed JSON document takes ~10x its size in memory.
    std::error_code ec;
    uintmax_t bytes = fs::file_size(in.path, ec);
    RF_CHECK(!ec, "{}: cannot read its size ({})", in.path, ec.message());
    RF_CHECK(bytes <= kMaxInputBytes, "{}: {} bytes; the gate reads results files of at most {} MiB", in.path, bytes,
             kMaxInputBytes >> 20);
    std::ifstream is(in.path, std::ios::binary);
    RF_CHECK(is, "{}: cannot open", in.path);
    json j;
    try {
      j = json::parse(is);
    } catch (const json::exception& e) {
      RF_FAIL("{}: not valid JSON ({}); {}", in.path, e.what(), kKnownKinds);
    }
    if (!in.folder.empty()) per_folder[in.folder] += 0;
    if (!in.folder.empty() && input_kind(j, nullptr) == InputKind::other) {
      if (warn) warn(fmt::format("{}: {} is not something the gate reads; skipped", in.path, json_type(j)));
      continue;
    }
    for (Figure& fig : extract(j, in.path, warn)) {
      auto [it, fresh] = seen.emplace(fig.name, in.path);
      RF_CHECK(fresh, "{}: figure '{}' appears twice ({}); each figure must come from one input once", in.path, fig.name,
               it->second == in.path ? "in this file" : "also in " + it->second);
      out.push_back(std::move(fig));
      if (!in.folder.empty()) ++per_folder[in.folder];
    }
    if (machine && !machine->known() && input_kind(j, nullptr) == InputKind::baseline && j.contains("machine"))
      *machine = machine_from_json(j.at("machine"), in.path + ": machine");
  }
  for (auto& [folder, n] : per_folder)
    RF_CHECK(n > 0, "{}: folder yields no figure (none of its .json files gives one); {}", folder, kKnownKinds);
  std::string names;
  for (const std::string& p : paths) names += (names.empty() ? "" : ", ") + p;
  RF_CHECK(!out.empty(),
           "{}: yield{} no figure to gate; {} (Google Benchmark JSON must hold twins to divide, such as "
           "BM_x/ref/... and BM_x/cpu/...)",
           names, paths.size() == 1 ? "s" : "", kKnownKinds);
  return out;
}

json to_json(const std::vector<Figure>& figs, const Machine* machine) {
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
  json j = {{"schema", "reframe.gate/1"}, {"figures", list}};
  if (machine && machine->known()) j["machine"] = machine_to_json(*machine);
  return j;
}

std::vector<Figure> from_json(const json& j, const std::string& source) {
  std::vector<Figure> out;
  const json& list = need(j, "figures", source);
  RF_CHECK(list.is_array(), "{} is {}, expected an array of figures", field(source, "figures"), show(list));
  RF_CHECK(!list.empty(),
           "{} is an empty list: a baseline must hold at least one figure (write one with `reframe gate "
           "--write-baseline FILE --current RUN...`)",
           field(source, "figures"));
  for (size_t i = 0; i < list.size(); ++i) {
    std::string where = fmt::format("{}: figures[{}]", source, i);
    const json& e = list[i];
    Figure f;
    f.name = need_string(e, "name", where);
    RF_CHECK(!f.name.empty(), "{} is empty, expected a figure name", field(where, "name"));
    where += " (" + f.name + ")";
    f.kind = parse_kind(need_string(e, "kind", where), where);
    f.value = need_number(e, "value", where);
    if (e.contains("spread")) f.spread = need_number(e, "spread", where);
    RF_CHECK(f.spread >= 0, "{} is {}, expected >= 0", field(where, "spread"), f.spread);
    if (e.contains("n_test")) f.n_test = whole(e.at("n_test"), field(where, "n_test"), 0, int64_t(1) << 40);
    if (e.contains("values")) {
      const json& v = e.at("values");
      RF_CHECK(v.is_array(), "{} is {}, expected an array of numbers", field(where, "values"), show(v));
      for (size_t k = 0; k < v.size(); ++k) f.values.push_back(finite(v[k], fmt::format("{}: values[{}]", where, k)));
    }
    f.n = e.contains("n") ? whole(e.at("n"), field(where, "n"), 1, int64_t(1) << 30)
                          : std::max<int64_t>(1, int64_t(f.values.size()));
    RF_CHECK(f.values.empty() || size_t(f.n) == f.values.size(), "{} is {} but 'values' holds {}: they must agree",
             field(where, "n"), f.n, f.values.size());
    switch (f.kind) {
      case Kind::exact:
        RF_CHECK(f.value >= 0, "{} is {}, expected a count >= 0", field(where, "value"), f.value);
        break;
      case Kind::metric:
        RF_CHECK(f.value >= 0 && f.value <= 1, "{} is {}, expected a fraction in [0, 1]", field(where, "value"), f.value);
        for (double x : f.values)
          RF_CHECK(x >= 0 && x <= 1, "{} holds {}, expected fractions in [0, 1]", field(where, "values"), x);
        break;
      case Kind::ratio:
        RF_CHECK(f.value > 0, "{} is {}, expected a ratio > 0", field(where, "value"), f.value);
        for (double x : f.values) RF_CHECK(x > 0, "{} holds {}, expected ratios > 0", field(where, "values"), x);
        break;
    }
    f.source = source;
    out.push_back(f);
  }
  return out;
}

// ---- machines ----

namespace {

// "gcc 12.2.0" -> "gcc 12": minor releases do not make another class.
std::string compiler_major(const std::string& c) { return c.substr(0, c.find('.')); }

}  // namespace

std::string machine_class(const Machine& m) {
  if (!m.known()) return "unknown";
  std::string cpu = m.cpu;
  size_t at = cpu.find('@');
  if (at != std::string::npos) cpu.resize(at);  // the nominal clock: the model number says it
  std::string slug, token;
  auto flush = [&] {
    if (!token.empty() && token != "r" && token != "tm" && token != "cpu" && token != "processor")
      slug += (slug.empty() ? "" : "-") + token;
    token.clear();
  };
  for (char ch : cpu) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (std::isalnum(c)) token += char(std::tolower(c));
    else flush();
  }
  flush();
  if (slug.empty()) slug = "unknown-cpu";
  return fmt::format("{}-{}t-{}", m.simd, m.threads, slug);
}

std::string describe(const Machine& m) {
  if (!m.known()) return "unknown (no machine recorded)";
  return fmt::format("{}, {}, {} thread{}, {} build, RF_NATIVE={}, {} (class {})", m.cpu, m.simd, m.threads,
                     m.threads == 1 ? "" : "s", m.build_type, m.native ? "ON" : "OFF", m.compiler, machine_class(m));
}

std::vector<std::string> class_differences(const Machine& b, const Machine& c) {
  if (!b.known()) return {"the baseline records no machine: machine unknown"};
  std::vector<std::string> d;
  auto differ = [&](const char* what, const std::string& here, const std::string& there) {
    if (here != there) d.push_back(fmt::format("{}: {} here, {} in the baseline", what, here, there));
  };
  differ("CPU", c.cpu, b.cpu);
  differ("SIMD level", c.simd, b.simd);
  differ("threads", std::to_string(c.threads), std::to_string(b.threads));
  differ("build type", c.build_type, b.build_type);
  differ("RF_NATIVE", c.native ? "ON" : "OFF", b.native ? "ON" : "OFF");
  differ("compiler", compiler_major(c.compiler), compiler_major(b.compiler));
  return d;
}

json machine_to_json(const Machine& m) {
  return {{"class", machine_class(m)}, {"cpu", m.cpu},       {"simd", m.simd},        {"threads", m.threads},
          {"build_type", m.build_type}, {"native", m.native}, {"compiler", m.compiler}};
}

Machine machine_from_json(const json& j, const std::string& where) {
  RF_CHECK(j.is_object(), "{} is {}, expected an object {{cpu, simd, threads, build_type, native, compiler}}", where,
           show(j));
  Machine m;
  m.cpu = need_string(j, "cpu", where);
  m.simd = need_string(j, "simd", where);
  RF_CHECK(!m.simd.empty(), "{} is empty, expected avx512, avx2, neon or portable", field(where, "simd"));
  m.threads = whole(need(j, "threads", where), field(where, "threads"), 1, 1 << 20);
  m.build_type = need_string(j, "build_type", where);
  const json& n = need(j, "native", where);
  RF_CHECK(n.is_boolean(), "{} is {}, expected true or false", field(where, "native"), show(n));
  m.native = n.get<bool>();
  m.compiler = need_string(j, "compiler", where);
  if (j.contains("class")) (void)need_string(j, "class", where);  // written for people; recomputed on reading
  return m;
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
    RF_CHECK(c.kind == b.kind, "{}: figure '{}' is of kind {} there, {} in the baseline {}", c.source, b.name,
             kind_name(c.kind), kind_name(b.kind), b.source);
    if (b.kind == Kind::ratio && !o.compare_ratios) {
      r.status = Status::skipped;
      r.note = "timing ratio not compared: " + o.ratios_skipped_because;
      rows.push_back(r);
      continue;
    }
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
          RF_CHECK(a->second->kind == Kind::ratio, "{}: figure '{}' is of kind {} there, ratio in the baseline",
                   a->second->source, b.name, kind_name(a->second->kind));
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

int count_compared(const std::vector<Row>& rows) {
  int n = 0;
  for (const Row& r : rows)
    n += r.status != Status::missing && r.status != Status::added && r.status != Status::skipped;
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
  if (r.status == Status::missing || r.status == Status::added || r.status == Status::skipped) return "";
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
  if (r.status == Status::missing || r.status == Status::added || r.status == Status::skipped) return "";
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
  int remeasured = 0, missing = 0, skipped = 0;
  std::string skip_note;
  for (const Row& r : rows) {
    remeasured += r.remeasured, missing += r.status == Status::missing;
    if (r.status == Status::skipped && !skipped++) skip_note = r.note;
  }
  auto part = [](int n, const char* what) { return n ? fmt::format(", {} {}", n, what) : std::string(); };
  std::string s = fmt::format("## reframe gate: {} regression{} in {} figures compared ({} improved, {} new{}{}{})\n\n",
                              bad, bad == 1 ? "" : "s", count_compared(rows), improved, added,
                              part(missing, "missing from this run"), part(remeasured, "measured twice"),
                              part(skipped, skipped == 1 ? "timing ratio skipped" : "timing ratios skipped"));
  if (skipped)
    s += fmt::format("**{} timing ratio{} not compared**: {}. Exact counts and accuracy are gated; "
                     "`--force-ratios` compares the ratios anyway.\n\n",
                     skipped, skipped == 1 ? " was" : "s were", skip_note.substr(skip_note.find(": ") + 2));
  std::string table =
      "| status | figure | kind | baseline | current | change | allowed drop | note |\n"
      "|---|---|---|---:|---:|---:|---:|---|\n";
  int shown = 0;
  for (const Row& r : rows) {
    if (!all && (r.status == Status::ok || r.status == Status::skipped) && !r.remeasured) continue;
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
