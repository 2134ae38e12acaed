#!/usr/bin/env python3
"""reframe report: suite results (classify/detect/segment JSON), `reframe models --json --layers` accounting and
Google Benchmark JSON into CSV tables, plots (PNG + SVG) and a Markdown/HTML summary.

Usage: report.py --out OUTDIR INPUT...   (an INPUT folder means every *.json in it and in its direct subfolders)
Exit status: 0 done (plots are skipped with a warning when matplotlib is missing), 2 an input is unreadable or
lacks a field the report needs (the message names the file and the field).
Checked by tests/report/test_report.sh (fixtures in tests/report/fixtures/).
Python 3 standard library; matplotlib (Agg) + numpy for the plots only.
The work is done by the package next to this file, scripts/reframe_report/ (load, tables, output, plots,
summary); this file is the command line and the order of the steps.
"""
import argparse
import os
import sys

# The package sits next to this script; Python puts the script's folder on sys.path, but not under -P /
# PYTHONSAFEPATH, so say it explicitly.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from reframe_report.load import InputError, load_inputs, warn  # noqa: E402
from reframe_report.output import Writer  # noqa: E402
from reframe_report.peers import PEER_COLS, peer_rows  # noqa: E402
from reframe_report.plots import make_plots  # noqa: E402
from reframe_report.summary import summary  # noqa: E402
from reframe_report.tables import bench_points, bench_rows, layer_rows, per_class_rows, run_rows, \
    suite_model_rows  # noqa: E402


def error(msg):
    print(f"report: error: {msg}", file=sys.stderr)
    return 2


def main(argv):
    ap = argparse.ArgumentParser(prog="reframe report", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output folder (created)")
    ap.add_argument("inputs", nargs="+", help="result JSON files or folders of them")
    args = ap.parse_args(argv)
    try:
        peers = []
        suites, layer_docs, benches = load_inputs(args.inputs, peers)
    except InputError as e:
        return error(e)
    if not (suites or layer_docs or benches or peers):
        return error("no usable input (expected reframe.classify/detect/segment results, "
                     "`reframe models --json --layers` output, Google Benchmark JSON or scripts/peers.py JSON)")
    try:
        w = Writer(args.out)
    except OSError as e:
        return error(f"cannot create output folder {args.out}: {e}")
    mrows, mcols = suite_model_rows(suites)
    pc_rows = per_class_rows(suites)
    rrows, rcols = run_rows(suites)
    lrows, lmodels = layer_rows(layer_docs)
    brows, bcols = bench_rows(benches)
    bpoints = bench_points(brows)
    if suites:
        w.csv("models.csv", mcols, mrows)
    if pc_rows:
        w.csv("metrics_per_class.csv", ["task", "source", "model", "metric", "class", "value", "std"], pc_rows)
    if rrows:
        w.csv("runs.csv", rcols, rrows)
    if layer_docs:
        if not lrows:
            warn("models JSON has no per-layer rows (run `reframe models --json --layers`); layers.csv is empty")
        w.csv("layers.csv", ["source", "model", "config", "input", "layer", "group", "type", "in", "out",
                             "learnable", "seeded", "state", "macs", "pool_reads", "act_bytes"], lrows)
    if benches:
        w.csv("benchmarks.csv", bcols, brows)
    prows = peer_rows(peers)
    if peers:
        w.csv("peers.csv", PEER_COLS, prows)
    figs = make_plots(w, suites, lmodels, bpoints, pc_rows, prows)
    cmd = " ".join([os.path.basename(sys.argv[0])] + list(argv))
    d, title = summary(cmd, suites, mrows, pc_rows, lmodels, bpoints, figs,
                       [s["path"] for s in suites] + [x["path"] for x in layer_docs] + [b["path"] for b in benches]
                       + [p["path"] for p in peers], peers, prows)
    w.text("summary.md", d.markdown())
    w.text("summary.html", d.html(title))
    for f in w.written:
        print(f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
