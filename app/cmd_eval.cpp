// `reframe eval PACKAGE`: a package evaluated on a dataset's test split or on the validation split its training
// held out (same --val and --seed), or on a synthetic test set (device side). Covered by tests/app/cli_options.sh.
#include <algorithm>
#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>

#include "app/commands.h"
#include "host/core/device.h"
#include "app/options.h"
#include "datasets/source.h"
#include "datasets/synthetic.h"
#include "host/core/printable.h"
#include "host/models/layers.h"
#include "host/package/model_package.h"
#include "training/trainer.h"

namespace rf {

namespace {

struct EvalCmdOptions {
  std::string package, data, split = "test";
  int64_t val = -1, synthetic_train = 4000, synthetic_test = 1000;
  int image_size = 32;
  uint64_t seed = 0;
};

int cmd_eval(const EvalCmdOptions& e) {
  RF_CHECK(e.split == "test" || e.split == "val", "eval: --split {} (expected test or val)", printable(e.split));
  if (e.data.empty()) check_synthetic_bytes(e.synthetic_test, e.image_size, "--synthetic-test");
  double regen = 0;
  std::unique_ptr<Model> m = load_model(read_package(e.package), e.package, &regen);
  data::Dataset ds;
  if (e.data.empty()) {
    ds = data::make_synthetic(e.synthetic_test, e.seed, e.synthetic_train, e.image_size, e.image_size);
  } else {
    data::ClassificationData cd = data::load_classification(e.data);
    if (e.split == "test") {
      ds = std::move(cd.test);
    } else {
      RF_CHECK(e.split == "val", "eval: --split {} (expected test or val)", e.split);
      int64_t val = e.val >= 0 ? e.val : cd.train.size() / 10;
      ds = data::holdout_split(cd.train, val, e.seed).val;
    }
  }
  m->to(run_device());
  FrozenWeights frozen;  // inference: the convs keep their weights in the fast path's layout
  EvalResult r = evaluate(*m, ds);
  std::printf("%s on %s (%lld images, %s): accuracy %.4f, loss %.4f, %.1f images/s, regeneration %.2f ms\n",
              m->config().name().c_str(), e.data.empty() ? "synthetic" : printable(e.data).c_str(), (long long)r.n,
              ds.hash_hex().c_str(), r.acc, r.loss, double(r.n) / std::max(r.seconds, 1e-9), regen * 1e3);
  return 0;
}

}  // namespace

void add_eval_command(CLI::App& app, Commands& out) {
  auto [c, o] =
      add_command<EvalCmdOptions>(app, out, "eval", "Evaluate a package on a dataset split (device side)", cmd_eval);
  c->add_option("package", o->package, "model package (.rfpk)")->required();
  add_device_option(c, out.back(), true);
  add_data_option(c, o->data);
  c->add_option("--split", o->split, "test or val")->check(CLI::IsMember({"test", "val"}));
  c->add_option("--val", o->val, "size of the held-out validation split (as in training; -1: 10 %)")
      ->check(CLI::Range(int64_t(-1), int64_t(100000000)));
  c->add_option("--seed", o->seed, "seed of the split (as in training)")->check(seed_value());
  c->add_option("--image-size", o->image_size, "synthetic image size (4..512)")->check(CLI::Range(4, 512));
}

}  // namespace rf
