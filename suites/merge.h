// `reframe merge`: the parts of a suite run spread with `--shard I/N` (suites/runs.h: Shard) put back into the one
// results file a whole run writes, which `reframe report` and `reframe gate` read. Each model's row gets every
// seed's run (in seed order) and its figures over seeds recomputed by the suite's own summaries (summarize_runs,
// summarize_classify_row, summarize_dense_row), so the merged file equals a single-machine run's except for what
// is measured per process: timings, memory peaks, wall time, provenance and output paths. A row's package bytes,
// latency and throughput come from the part that ran the model's last seed, as in a whole run. The parts must
// be of one run (schema, dataset, budget, model list, seeds and N equal) and cover 0..N-1 exactly once; anything
// else is refused naming the files. Checked by tests/suites/test_shard_merge.cpp.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace rf {

// parts: (file name for messages, its JSON).
nlohmann::json merge_parts(const std::vector<std::pair<std::string, nlohmann::json>>& parts);

}  // namespace rf
