// Seed policy, per-run training options, pack -> read back -> regenerate -> evaluate (see runs.h).
#include "suites/runs.h"

#include <filesystem>

#include <fmt/format.h>

#include "host/package/model_package.h"
#include "suites/measure.h"

namespace rf {

ModelConfig run_config(const ModelConfig& base_cfg, uint64_t base, int s) {
  ModelConfig cfg = base_cfg;
  if (cfg.is_nl()) cfg.seed = base + 1000 * uint64_t(s);  // NL modules' seeds: base + 1000 s + i
  cfg.init_seed = base + uint64_t(s) + 1;
  return cfg;
}

TrainOptions run_train_options(const TrainOptions& t, uint64_t base, int s, const std::string& run_name) {
  TrainOptions to = t;
  to.seed = base + uint64_t(s);
  if (!t.checkpoint.empty()) to.checkpoint = fmt::format("{}/{}-s{}.ckpt.rfpk", t.checkpoint, run_name, s);
  return to;
}

PackedRun pack_and_evaluate(Model& model, const PackageMeta& meta, const std::string& stem,
                            const std::function<nlohmann::json(Model&, const std::string&)>& evaluate) {
  PackedRun r;
  for (const char* dt : {"f32", "f16", "i8"}) {
    PackOptions po;
    po.dtype = parse_storage_dtype(dt);
    Package p = pack_model(model, po);
    p.meta = meta;  // what inference needs: input size, normalisation, class names
    const std::string path = fmt::format("{}-{}.rfpk", stem, dt);
    write_package(path, p);
    double regen = 0;
    std::unique_ptr<Model> dev = load_model(read_package(path), path, &regen);
    nlohmann::json e = {{"path", path}, {"bytes", std::filesystem::file_size(path)}, {"regen_cold_seconds", regen}};
    e.update(evaluate(*dev, dt));
    dev->clear_cache();
    if (std::string(dt) == "f32") {
      e["regen_seconds_median"] = regen_seconds_median(*dev);
      r.f32_model = std::move(dev);
    }
    r.packages[dt] = e;
  }
  return r;
}

}  // namespace rf
