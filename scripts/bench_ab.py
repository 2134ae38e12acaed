#!/usr/bin/env python3
"""Before/after on a shared, noisy machine: runs two bench_models binaries (say a copy of the old build and the
new one) one after the other, --rounds times, the order swapped every round (A B, B A, ...), so that the machine's
slow and fast periods fall on both; prints per benchmark every round's images/s, the medians and the change, and
for each NL model its ratio to ResNet-18 measured in the same run (bench_ratio.py's reading of the JSON).
  python3 scripts/bench_ab.py /tmp/bench_models.old build/bench_models --rounds 4 \\
      --filter 'BM_train_step/(nl-resnet18-dw|resnet18)/N=64/'
Each run: --benchmark_repetitions=REPS (medians), random interleaving, OMP_NUM_THREADS=THREADS. --out FILE keeps
every run's figures as JSON (written atomically). Exit 2 on bad options (a binary that is missing or not
executable, a round count out of range), 1 when a run fails or its output is not benchmark JSON."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_ratio  # noqa: E402  (the JSON reading: one place)


def fail(code, msg):
    print(f"bench_ab: {msg}", file=sys.stderr)
    sys.exit(code)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="bench_ab.py", description=__doc__.split("\n")[0])
    p.add_argument("a", metavar="A", help="the first bench_models binary (before)")
    p.add_argument("b", metavar="B", help="the second bench_models binary (after)")
    p.add_argument("--rounds", type=int, default=4, help="runs of each binary, alternated (1..50, default 4)")
    p.add_argument("--filter", default="BM_(forward/.*/N=(1|64)|train_step/.*/N=64)/",
                   help="--benchmark_filter (default: the README's CPU throughput rows)")
    p.add_argument("--reps", type=int, default=3, help="--benchmark_repetitions per run (1..20, default 3)")
    p.add_argument("--min-time", type=float, default=0.5, help="--benchmark_min_time in s (0.01..60, default 0.5)")
    p.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS (1..1024, default 2)")
    p.add_argument("--out", help="write every run's figures here as JSON")
    args = p.parse_args(argv)
    for name, path in (("A", args.a), ("B", args.b)):
        if not os.path.isfile(path) or not os.access(path, os.X_OK):
            fail(2, f"{name} = '{path}' is not an executable file (expected a bench_models binary)")
    if args.out and not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
        fail(2, f"--out {args.out}: its folder does not exist")
    for opt, v, lo, hi in (("--rounds", args.rounds, 1, 50), ("--reps", args.reps, 1, 20),
                           ("--min-time", args.min_time, 0.01, 60), ("--threads", args.threads, 1, 1024)):
        if not lo <= v <= hi:
            fail(2, f"{opt} {v} is out of range (expected {lo}..{hi})")
    return args


def run(binary, args, tmp, tag):
    """One run of one binary: {(kind, n, size, model): images/s} (medians of the repetitions)."""
    path = os.path.join(tmp, tag + ".json")
    cmd = [binary, f"--benchmark_filter={args.filter}", f"--benchmark_repetitions={args.reps}",
           f"--benchmark_min_time={args.min_time:g}", "--benchmark_enable_random_interleaving=true",
           "--benchmark_report_aggregates_only=true", f"--benchmark_out={path}", "--benchmark_out_format=json"]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        fail(1, f"{tag}: '{binary}' exited with {proc.returncode}: {proc.stderr.strip()[-400:]}")
    try:
        _, rows, _ = bench_ratio.load(path)
    except (OSError, ValueError, KeyError, TypeError) as e:
        fail(1, f"{tag}: '{binary}' wrote no readable benchmark JSON ({path}): {e}")
    if not rows:
        fail(1, f"{tag}: '{binary}' ran no BM_forward / BM_train_step benchmark matching '{args.filter}'")
    return rows


def same_run_ratio(rows, key):
    kind, n, size, model = key
    base = rows.get((kind, n, size, "resnet18"))
    return rows[key] / base if base and model != "resnet18" else None


def main(argv):
    args = parse_args(argv)
    runs = {"A": [], "B": []}
    with tempfile.TemporaryDirectory(prefix="bench_ab.") as tmp:
        for r in range(args.rounds):
            for side in ("AB" if r % 2 == 0 else "BA"):
                binary = args.a if side == "A" else args.b
                print(f"round {r + 1}/{args.rounds}: {side} ({binary})", file=sys.stderr, flush=True)
                runs[side].append(run(binary, args, tmp, f"round{r + 1}-{side}"))
    keys = sorted(set().union(*(set(rows) for rows in runs["A"] + runs["B"])))
    print(f"# A = {args.a}, B = {args.b}: {args.rounds} rounds, {args.reps} repetitions per run, "
          f"{args.threads} threads; images/s per round (A first in odd rounds)")
    print("| benchmark | A per round | B per round | median A → B | change | ×R18 same run, median A → B |")
    print("|---|---|---|---:|---:|---:|")
    out = []
    for key in keys:
        kind, n, size, model = key
        va = [rows[key] for rows in runs["A"] if key in rows]
        vb = [rows[key] for rows in runs["B"] if key in rows]
        ra = [x for x in (same_run_ratio(rows, key) for rows in runs["A"] if key in rows) if x is not None]
        rb = [x for x in (same_run_ratio(rows, key) for rows in runs["B"] if key in rows) if x is not None]
        ma, mb = (statistics.median(va) if va else None), (statistics.median(vb) if vb else None)
        change = f"{(mb / ma - 1) * 100:+.1f} %" if ma and mb else "—"
        ratio = (f"{statistics.median(ra):.2f}× → {statistics.median(rb):.2f}×" if ra and rb else "—")
        med = f"{ma:.1f} → {mb:.1f}" if ma and mb else "—"
        print(f"| {kind}/{model}/N={n}/{size} | {', '.join(f'{v:.1f}' for v in va)} | "
              f"{', '.join(f'{v:.1f}' for v in vb)} | {med} | {change} | {ratio} |")
        out.append({"benchmark": f"{kind}/{model}/N={n}/{size}", "a": va, "b": vb, "a_over_resnet18": ra,
                    "b_over_resnet18": rb})
    if args.out:
        tmp_out = args.out + ".tmp"
        with open(tmp_out, "w") as f:
            json.dump({"a": args.a, "b": args.b, "rounds": args.rounds, "reps": args.reps, "threads": args.threads,
                       "filter": args.filter, "results": out}, f, indent=1)
        os.replace(tmp_out, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
