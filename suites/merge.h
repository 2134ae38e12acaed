// `reframe merge`: the parts of a suite run spread with `--shard I/N` (suites/runs.h: Shard) put back into the one
// results file a whole run writes, which `reframe report` and `reframe gate` read. Each model's row gets every
// seed's run (in seed order) and its figures over seeds recomputed by the suite's own summaries (summarize_runs,
// summarize_classify_row, summarize_dense_row), so the merged file equals a single-machine run's except for what
// is measured per process: timings, memory peaks, wall time, provenance and output paths. A row's package bytes,
// latency and throughput come from the part that ran the model's last seed, as in a whole run. The parts must
// be of one run (schema, dataset, budget, model list, seeds and N equal) and cover 0..N-1 exactly once; anything
// else is refused naming the files. Checked by tests/suites/test_shard_merge.cpp.
// merge_rank_groups: the same merge inside one mpirun job (`bench ... --rank-groups G`), the parts sent to world
// rank 0 instead of written; checked by tests/training/mpi_train.sh (2 ranks, 2 groups against 1 process).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace rf {

// parts: (file name for messages, its JSON).
nlohmann::json merge_parts(const std::vector<std::pair<std::string, nlohmann::json>>& parts);

// After a suite ran with the world split into rank groups (host/core/comm.h: split; group g ran shard g/G): every
// process calls it with its suite's result (a part at each group's root, null elsewhere); the parts go to world
// rank 0, which merges them (merge_parts; provenance: its own, with "merged_from" naming each rank group) and
// writes the one results file `results_path` atomically. Returns the merged results at world rank 0, null
// elsewhere.
nlohmann::json merge_rank_groups(const nlohmann::json& part, const std::string& results_path);

}  // namespace rf
