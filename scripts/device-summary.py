#!/usr/bin/env python3
"""The device check's summary (scripts/device-check.sh): reads its results folder (steps.tsv, gtest XML, the GPU
benchmarks' Google Benchmark JSON, nvidia-smi.csv, the GPU tests' log), writes summary.json (schema
reframe-bench/device-check/2) and prints a short table to stdout. Exit status 0 when every step is ok, skipped or
optional-and-absent, 1 otherwise. Checked by the local rehearsal (OUT=/tmp/out bash scripts/device-check.sh, no GPU).

Benchmark figures, from the rows of one run (median of the repetitions when aggregates are reported):
  seeded conv   regenerated vs materialised weights per layer shape: throughput ratio = t_materialised / t_regen;
                per NL-ResNet-18 variant (dw / 512 / 768) the whole-network ratio weights each shape by the module
                count the benchmark reports in its counters count_dw / count_512 / count_768 (target >= 0.9)
  Philox        ours vs curandGenerateNormal: ratio = t_curand / t_ours (target >= 1)
  NL module     fused vs unfused launches: ratio = t_unfused / t_fused
"""
import argparse
import glob
import json
import os
import re
import statistics
import sys
import xml.etree.ElementTree as ET


def read_steps(path):
    steps = []
    if os.path.exists(path):
        for line in open(path):
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 4:
                steps.append({"step": parts[0], "status": parts[1], "seconds": int(parts[2]) if parts[2].isdigit() else 0,
                              "limit_s": parts[3], "detail": parts[4] if len(parts) > 4 else ""})
    return steps


def read_gtest(folder):
    tests = {}
    for f in sorted(glob.glob(os.path.join(folder, "*.xml"))):
        try:
            root = ET.parse(f).getroot()
        except ET.ParseError as e:  # a test binary killed while writing its XML
            tests[os.path.basename(f)[:-4]] = {"error": f"unreadable XML: {e}"}
            continue
        t = {k: int(root.get(k, 0)) for k in ("tests", "failures", "errors", "disabled")}
        t["skipped"] = sum(1 for c in root.iter("testcase") if c.get("result") == "skipped" or c.find("skipped") is not None)
        tests[os.path.basename(f)[:-4]] = t
    return tests


def bench_rows(path):
    """name -> row (time in ms), the median aggregate when there is one."""
    if not os.path.exists(path):
        return {}, {}
    try:
        doc = json.load(open(path))
    except (OSError, ValueError) as e:  # empty (no benchmark matched) or cut off by the time limit
        return {}, {"error": f"{os.path.basename(path)}: {e}"}
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
    rows, plain = {}, {}
    for b in doc.get("benchmarks", []):
        if b.get("error_occurred"):
            continue
        name = b.get("run_name", b["name"])
        r = dict(b, ms=b["real_time"] * scale.get(b.get("time_unit", "ns"), 1e-6))
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                rows[name] = r
        else:
            plain.setdefault(name, []).append(r)
    for name, rs in plain.items():  # no aggregates: the median of the plain rows
        if name not in rows:
            rows[name] = dict(rs[0], ms=statistics.median(x["ms"] for x in rs))
    return rows, doc.get("context", {})


def pairs(rows, prefix, a, b):
    """shape -> (row a, row b) for names prefix/a/shape and prefix/b/shape."""
    out = {}
    for name, r in rows.items():
        m = re.match(re.escape(prefix) + r"/([^/]+)/(.*)$", name)
        if m and m.group(1) == a:
            other = rows.get(f"{prefix}/{b}/{m.group(2)}")
            if other:
                out[m.group(2)] = (r, other)
    return out


def bench_figures(rows):
    fig = {}
    conv = pairs(rows, "BM_gpu_seeded_conv", "regen", "materialized")
    if conv:
        per_layer = {shape: mat["ms"] / regen["ms"] for shape, (regen, mat) in conv.items()}
        fig["seeded_conv_layer_ratio"] = per_layer
        nets = {}
        for v in ("dw", "512", "768"):
            key = f"count_{v}"
            t_regen = sum(r[key] * r["ms"] for r, _ in conv.values() if r.get(key))
            t_mat = sum(r[key] * m["ms"] for r, m in conv.values() if r.get(key))
            if t_regen > 0:
                nets[v] = {"regen_ms": t_regen, "materialised_ms": t_mat, "ratio": t_mat / t_regen}
        fig["seeded_conv_network"] = nets
    ph = pairs(rows, "BM_gpu_philox_normal", "ours", "curand")
    if ph:
        ours, cur = next(iter(ph.values()))
        fig["philox"] = {"ours_ms": ours["ms"], "curand_ms": cur["ms"], "ratio": cur["ms"] / ours["ms"]}
    nl = pairs(rows, "BM_gpu_nl_module", "fused", "unfused")
    if nl:
        fig["nl_module_fused_over_unfused"] = {s: u["ms"] / f["ms"] for s, (f, u) in nl.items()}
    return fig


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--rev", default="unknown")
    ap.add_argument("--gpu", type=int, default=0)
    ap.add_argument("--seconds", type=int, default=0)
    ap.add_argument("--budget", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    res = a.results
    s = {"schema": "reframe-bench/device-check/2", "git_rev": a.rev, "gpu_present": bool(a.gpu),
         "seconds": a.seconds, "budget_s": a.budget, "steps": read_steps(os.path.join(res, "steps.tsv")),
         "tests": read_gtest(os.path.join(res, "gtest"))}
    smi = os.path.join(res, "nvidia-smi.csv")
    if os.path.exists(smi):
        lines = [ln.strip() for ln in open(smi) if ln.strip()]
        if len(lines) > 1:
            s["device"] = dict(zip([h.strip() for h in lines[0].split(",")], [v.strip() for v in lines[1].split(",")]))
    for log in glob.glob(os.path.join(res, "*.log")):
        m = re.search(r"cuDNN runtime version (\d+)", open(log, errors="replace").read())
        if m:
            s["cudnn_runtime_version"] = int(m.group(1))
            break
    rows, ctx = bench_rows(os.path.join(res, "bench_gpu_kernels.json"))
    if rows:
        s["kernel_bench"] = {"rows": len(rows), "context": {k: ctx.get(k) for k in ("date", "host_name", "num_cpus")},
                             **bench_figures(rows)}
    elif a.gpu:  # the step may have exited 0 with nothing measured (no BM_gpu_ benchmark registered)
        s["steps"].append({"step": "kernel-bench", "status": "FAILED: no GPU benchmark rows", "seconds": 0,
                           "limit_s": "-", "detail": ctx.get("error", "bench_gpu_kernels.json has no rows")})
    json.dump(s, open(a.out, "w"), indent=1)

    # A sanitizer that ran out of time on some binary is inconclusive, not failed ("partial"); budget cuts are not.
    fine = ("ok", "skipped", "not in bundle", "partial")
    bad = [st for st in s["steps"] if not st["status"].startswith(fine)]
    if a.gpu:  # with a device present, a skipped GPU test is a problem (RF_REQUIRE_GPU=1 should make it fail)
        skipped = [n for n, t in s["tests"].items() if n.startswith("gpu_test_") and t.get("skipped")]
        if skipped:
            bad.append({"step": "tests skipped on a GPU: " + " ".join(skipped)})
    dev = s.get("device", {}).get("name", "no GPU")
    print("\n==================== device-check summary ====================")
    print(f"revision {a.rev} | {dev} | cuDNN {s.get('cudnn_runtime_version', '?')} | {a.seconds}s of {a.budget}s")
    print(f"{'step':14s} {'status':34s} {'s/limit':>9s}  detail")
    for st in s["steps"]:
        print(f"{st['step']:14s} {st['status'][:34]:34s} {st['seconds']:4d}/{st['limit_s']:>4s}  {st['detail'][:80]}")
    for name, t in s["tests"].items():
        if "error" in t:
            print(f"  {name}: {t['error']}")
        else:
            print(f"  {name:36s} tests {t['tests']:3d} failures {t['failures']:2d} skipped {t['skipped']:2d}")
    kb = s.get("kernel_bench", {})
    for v, n in kb.get("seeded_conv_network", {}).items():
        print(f"  seeded conv {v:4s} whole net regen/materialised throughput {n['ratio']:.3f} (target >= 0.9)")
    if kb.get("seeded_conv_layer_ratio") and not kb.get("seeded_conv_network"):
        r = sorted(kb["seeded_conv_layer_ratio"].values())
        print(f"  seeded conv per layer regen/materialised: min {r[0]:.3f} median {statistics.median(r):.3f}")
    if "philox" in kb:
        print(f"  Philox normals ours vs curandGenerateNormal throughput {kb['philox']['ratio']:.3f} (target >= 1)")
    print("RESULT:", "OK" if not bad else "PROBLEMS in " + ", ".join(st["step"] for st in bad),
          "" if a.gpu else "(no GPU: GPU steps skipped)")
    return 0 if not bad else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # never leave the device call without a summary
        out = sys.argv[sys.argv.index("--out") + 1] if "--out" in sys.argv else "summary.json"
        json.dump({"schema": "reframe-bench/device-check/2", "summary_error": repr(e)}, open(out, "w"))
        print(f"device-summary: {e!r}: partial summary written")
        sys.exit(1)
