#!/usr/bin/env python3
"""Reads Google Benchmark JSON from bench_models and prints throughput per model and batch, and each model's
ratio to ResNet-18 measured in the same run (the only comparison that means something on a shared machine).
Uses the median aggregate when repetitions were run. --markdown: issue 13's table (forward at batch 1 and 64,
training step at 64, each over ResNet-18, against the MAC ratio and the targets; training peak_MB), as in the
README's "CPU throughput"."""
import json
import re
import sys

# MACs per 32x32 image (docs/MODELS.md) and issue 13's targets: forward over ResNet-18, training step over it.
MACS = {"resnet18": 555422720, "nl-resnet18-dw": 57844736, "nl-resnet18-512": 126456832,
        "nl-resnet18-768": 170779648}
FORWARD_TARGET = {"nl-resnet18-dw": 6.0, "nl-resnet18-512": 2.6, "nl-resnet18-768": 2.0}
TRAIN_TARGET = {"nl-resnet18-dw": 4.0}


def load(path):
    with open(path) as f:
        data = json.load(f)
    rows, peak = {}, {}
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        m = re.match(r"BM_(forward|train_step)/([^/]+)/N=(\d+)/([0-9x]+)", b["name"])
        if not m:
            continue
        kind, model, n, size = m.group(1), m.group(2), int(m.group(3)), m.group(4)
        rows[(kind, n, size, model)] = b["items_per_second"]
        if "peak_MB" in b:
            peak[(kind, n, size, model)] = b["peak_MB"]
    return data, rows, peak


def markdown(rows, peak):
    size = "32x32"
    models = [m for m in MACS if any(k[3] == m for k in rows)]
    def cell(kind, n, model):
        v, base = rows.get((kind, n, size, model)), rows.get((kind, n, size, "resnet18"))
        if v is None:
            return "—", "—"
        return f"{v:.0f}", (f"{v / base:.2f}×" if base else "—")
    print("| model | MACs / ResNet-18's | forward bs 1 (img/s) | ×R18 | forward bs 64 | ×R18 | target | "
          "train step bs 64 | ×R18 | target | train peak_MB bs 64 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m in models:
        f1, r1 = cell("forward", 1, m)
        f64, r64 = cell("forward", 64, m)
        t64, rt = cell("train_step", 64, m)
        pk = peak.get(("train_step", 64, size, m))
        pk = f"{pk:.0f}" if pk is not None else "—"
        ft = f"≥ {FORWARD_TARGET[m]:g}×" if m in FORWARD_TARGET else ""
        tt = f"≥ {TRAIN_TARGET[m]:g}×" if m in TRAIN_TARGET else ""
        print(f"| {m} | 1/{MACS['resnet18'] / MACS[m]:.1f} | {f1} | {r1} | {f64} | {r64} | {ft} | {t64} | {rt} | "
              f"{tt} | {pk} |")


def main(argv):
    md = "--markdown" in argv
    paths = [a for a in argv if a != "--markdown"]
    data, rows, peak = load(paths[0] if paths else "/dev/stdin")
    if md:
        return markdown(rows, peak)
    ctx = data.get("context", {})
    print(f"# {ctx.get('host_name', '?')}, {ctx.get('num_cpus', '?')} CPUs, threads per run: "
          f"{ctx.get('omp_num_threads', 'OMP default')}")
    print(f"{'benchmark':<12} {'batch':>5} {'input':>6} {'model':<18} {'images/s':>10} {'vs resnet18':>12}")
    for (kind, n, size, model) in sorted(rows):
        base = rows.get((kind, n, size, "resnet18"))
        ratio = f"{rows[(kind, n, size, model)] / base:.2f}x" if base else "-"
        print(f"{kind:<12} {n:>5} {size:>6} {model:<18} {rows[(kind, n, size, model)]:>10.1f} {ratio:>12}")


if __name__ == "__main__":
    main(sys.argv[1:])
