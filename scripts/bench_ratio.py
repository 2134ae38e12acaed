#!/usr/bin/env python3
"""Reads Google Benchmark JSON from bench_models and prints throughput per model and batch, and each model's
ratio to ResNet-18 measured in the same run (the only comparison that means something on a shared machine).
Uses the median aggregate when repetitions were run."""
import json
import re
import sys


def main(path):
    with open(path) as f:
        data = json.load(f)
    rows = {}
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        m = re.match(r"BM_(forward|train_step)/([^/]+)/N=(\d+)/([0-9x]+)", b["name"])
        if not m:
            continue
        kind, model, n, size = m.group(1), m.group(2), int(m.group(3)), m.group(4)
        rows[(kind, n, size, model)] = b["items_per_second"]
    ctx = data.get("context", {})
    print(f"# {ctx.get('host_name', '?')}, {ctx.get('num_cpus', '?')} CPUs, threads per run: "
          f"{ctx.get('omp_num_threads', 'OMP default')}")
    print(f"{'benchmark':<12} {'batch':>5} {'input':>6} {'model':<18} {'images/s':>10} {'vs resnet18':>12}")
    for (kind, n, size, model) in sorted(rows):
        base = rows.get((kind, n, size, "resnet18"))
        ratio = f"{rows[(kind, n, size, model)] / base:.2f}x" if base else "-"
        print(f"{kind:<12} {n:>5} {size:>6} {model:<18} {rows[(kind, n, size, model)]:>10.1f} {ratio:>12}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/dev/stdin")
