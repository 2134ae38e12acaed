#!/usr/bin/env bash
# Checks scripts/report.py and its modules, scripts/reframe_report/ (the engine of `reframe report`), on the
# fixtures next to this script: a real classify run (4 models, 1 seed), hand-written detect/segment results
# (seeds, per-class lists), `reframe models --json --layers` for two models, and Google Benchmark JSON from
# bench_models and bench_kernels.
# Asserts: every output exists and is non-empty, CSV headers and row counts, PNG signatures, SVG/HTML parse as
# XML-ish, the summary names every model; a malformed input exits 2 naming the file (and the field); an unknown
# JSON kind is skipped with a warning; without matplotlib the CSV + summary still come out, with a warning.
# Usage: test_report.sh PYTHON REPORT_PY WORKDIR      (takes a few seconds)
set -euo pipefail
PY=${1:?usage: test_report.sh PYTHON REPORT_PY WORKDIR}
REPORT=${2:?usage: test_report.sh PYTHON REPORT_PY WORKDIR}
WORK=${3:?usage: test_report.sh PYTHON REPORT_PY WORKDIR}
FIX="$(cd "$(dirname "$0")" && pwd)/fixtures"
rm -rf "$WORK" && mkdir -p "$WORK"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# --- 1. full report on all fixtures (the folder as input)
OUT="$WORK/out"
if ! "$PY" "$REPORT" --out "$OUT" "$FIX" >"$WORK/stdout" 2>"$WORK/stderr"; then
  cat "$WORK/stderr"; fail "report on fixtures exited non-zero"
fi
for f in models.csv metrics_per_class.csv runs.csv layers.csv benchmarks.csv summary.md summary.html \
         accuracy_vs_bytes accuracy_vs_macs throughput_vs_batch layer_costs ap50_per_class iou_per_class; do
  case $f in *.*) files=("$f") ;; *) files=("$f.png" "$f.svg") ;; esac
  for g in "${files[@]}"; do
    if [[ -s "$OUT/$g" ]]; then
      grep -qxF "$OUT/$g" "$WORK/stdout" || fail "$g written but not listed on stdout"
    else
      fail "$g missing or empty"
    fi
  done
done
ls -A "$OUT" | grep -q '\.tmp' && fail "temporary files left in $OUT"

# CSV headers, row counts, and values checked in Python (csv module, so quoted commas are handled)
if "$PY" - "$OUT" "$FIX" <<'EOF'; then ok "CSV headers, rows and values"; else fail "CSV checks"; fi
import csv, json, os, sys
out, fix = sys.argv[1], sys.argv[2]
bad = []
def rows(name):
    with open(os.path.join(out, name), newline="") as f:
        r = list(csv.reader(f))
    return r[0], [dict(zip(r[0], x)) for x in r[1:]]
def expect(cond, what):
    if not cond:
        bad.append(what)
h, m = rows("models.csv")
for col in ("task", "model", "config", "test_acc_mean", "test_acc_std", "map50_mean", "miou_mean", "macs",
            "learnable_params", "seeded_weights", "bn_state", "package_bytes_f32", "package_bytes_f16",
            "package_bytes_i8", "package_f32_pct_resnet18_f32", "device_storage_bytes", "peak_memory_inference_bytes",
            "latency_batch1_ms", "throughput_b64_images_per_s"):
    expect(col in h, f"models.csv lacks column {col}")
expect(len(m) == 4 + 2 + 2, f"models.csv has {len(m)} rows, expected 8 (4 classify + 2 detect + 2 segment)")
dw = [r for r in m if r["task"] == "classify" and r["model"] == "nl-resnet18-dw"]
expect(len(dw) == 1 and abs(float(dw[0]["package_f32_pct_resnet18_f32"]) - 100 * 4476592 / 44740272) < 1e-6,
       "nl-resnet18-dw package % of resnet18 f32")
expect(len(dw) == 1 and abs(float(dw[0]["test_acc_mean"]) - 0.498) < 1e-12, "nl-resnet18-dw test_acc_mean")
expect(len(dw) == 1 and [dw[0][f"package_bytes_{p}"] for p in ("f32", "f16", "i8")] == ["4476592", "2287920", "1212848"]
       and dw[0]["macs"] == "57844736" and dw[0]["learnable_params"] == "1107786" and dw[0]["seeded_weights"] == "30528",
       "nl-resnet18-dw accounting columns")
seg = [r for r in m if r["task"] == "segment" and r["model"] == "resnet18"]
expect(len(seg) == 1 and seg[0]["miou_n"] == "3" and float(seg[0]["miou_std"]) > 0, "segment miou over 3 seeds")
h, pc = rows("metrics_per_class.csv")
expect(h == ["task", "source", "model", "metric", "class", "value", "std"], f"metrics_per_class.csv header {h}")
expect(len(pc) == 2 * 3 + 2 * 5, f"metrics_per_class.csv has {len(pc)} rows, expected 16")
h, lay = rows("layers.csv")
for col in ("model", "layer", "type", "in", "out", "learnable", "seeded", "macs", "pool_reads", "act_bytes"):
    expect(col in h, f"layers.csv lacks column {col}")
doc = json.load(open(os.path.join(fix, "models_layers.json")))
expect(len(lay) == sum(len(x["layers"]) for x in doc["models"]), f"layers.csv has {len(lay)} rows")
for mm in doc["models"]:
    s = sum(int(r["macs"]) for r in lay if r["model"] == mm["model"])
    expect(s == mm["totals"]["macs"], f"layers.csv MACs of {mm['model']} sum to {s}, totals say {mm['totals']['macs']}")
h, b = rows("benchmarks.csv")
for col in ("name", "family", "model", "batch", "real_time_ms", "items_per_second", "MACs"):
    expect(col in h, f"benchmarks.csv lacks column {col}")
nb = sum(len(json.load(open(os.path.join(fix, f)))["benchmarks"]) for f in ("bench_models.json", "bench_kernels.json"))
expect(len(b) == nb, f"benchmarks.csv has {len(b)} rows, expected {nb}")
fw = [r for r in b if r["family"] == "BM_forward" and r["model"] == "resnet18" and r["batch"] == "8"]
expect(len(fw) == 1 and abs(float(fw[0]["real_time_ms"]) - 42.4153940000585) < 1e-9, "BM_forward/resnet18/N=8 row")
h, runs = rows("runs.csv")
expect("epoch" in h and "seed" in h and "train_loss" in h, f"runs.csv header {h}")
expect(len(runs) == 4 * 3 + 2 * 3 * 2, f"runs.csv has {len(runs)} rows, expected 24")
for x in bad:
    print("  " + x)
sys.exit(1 if bad else 0)
EOF

# PNG signature, SVG and HTML well-formed
if "$PY" - "$OUT" <<'EOF'; then ok "PNG signatures, SVG parse"; else fail "PNG/SVG checks"; fi
import glob, os, sys, xml.etree.ElementTree as ET
out = sys.argv[1]
bad = 0
pngs, svgs = sorted(glob.glob(os.path.join(out, "*.png"))), sorted(glob.glob(os.path.join(out, "*.svg")))
if len(pngs) != 6 or len(svgs) != 6:
    print(f"  expected 6 PNG and 6 SVG, got {len(pngs)} and {len(svgs)}"); bad = 1
for p in pngs:
    if open(p, "rb").read(8) != b"\x89PNG\r\n\x1a\n":
        print(f"  {p}: not a PNG"); bad = 1
for s in svgs:
    try:
        root = ET.parse(s).getroot()
        if not root.tag.endswith("svg"):
            raise ValueError(f"root element {root.tag}")
    except Exception as e:
        print(f"  {s}: {e}"); bad = 1
sys.exit(bad)
EOF

for model in resnet18 nl-resnet18-dw nl-resnet18-512 nl-resnet18-768; do
  grep -q "| $model |" "$OUT/summary.md" || fail "summary.md has no table row for $model"
  grep -q "<td class=\"l\">$model</td>" "$OUT/summary.html" || fail "summary.html has no table row for $model"
done
for s in "git revision" "99fe7e2d4b8ea26e632803608ebf24180d424cc2" "Dataset:" "Budget:" "Per-class ap50_per_class" \
         "Per-class iou_per_class" "accuracy_vs_bytes.png" "BM_conv2d"; do
  grep -qF "$s" "$OUT/summary.md" || fail "summary.md lacks '$s'"
done
grep -qF '<img src="accuracy_vs_bytes.svg"' "$OUT/summary.html" || fail "summary.html does not embed the SVG"
grep -qiE '(src|href)="https?:' "$OUT/summary.html" && fail "summary.html refers to an external resource"
[[ $fails -eq 0 ]] && ok "summary.md / summary.html contents"

# --- 2. malformed inputs exit 2 and name the file (and the field)
expect_error() {  # name, file contents, text the message must contain
  local f="$WORK/$1"
  printf '%s' "$2" >"$f"
  set +e
  "$PY" "$REPORT" --out "$WORK/out_bad" "$FIX/classify.json" "$f" >/dev/null 2>"$WORK/err"
  local rc=$?
  set -e
  if [[ $rc -ne 2 ]]; then fail "$1: exit $rc, expected 2"
  elif ! grep -qF "$f" "$WORK/err"; then fail "$1: message does not name the file: $(cat "$WORK/err")"
  elif ! grep -qF "$3" "$WORK/err"; then fail "$1: message lacks '$3': $(cat "$WORK/err")"
  else ok "$1 -> exit 2: $(head -1 "$WORK/err")"
  fi
}
expect_error truncated.json '{"schema": "reframe.classify/1", "models": [ {"model": "x"' "not valid JSON"
expect_error no_macs.json '{"schema":"reframe.classify/1","models":[{"model":"a","config":"a:","learnable_params":1,"package_bytes":{"f32":4},"test_acc":{"mean":0.5,"std":0,"values":[0.5]}}]}' "models[0].macs"
expect_error no_metric.json '{"schema":"reframe.segment/1","models":[{"model":"a","config":"a:","macs":1,"learnable_params":1,"package_bytes":{"f32":4}}]}' "models[0].miou"
expect_error bad_bench.json '{"context":{},"benchmarks":[{"name":"BM_forward/a/N=1/32x32","time_unit":"ms"}]}' "benchmarks[0].real_time"
expect_error bad_layer.json '{"schema":"reframe.models/1","models":[{"model":"a","layers":[{"name":"stem.conv","type":"conv2d","macs":"many","learnable":1}]}]}' "models[0].layers[0].macs"
[[ -e "$WORK/out_bad" ]] && fail "an output folder was created for invalid input"

# --- 3. an unknown JSON kind is skipped with a warning, the rest is reported
echo '{"schema": "something.else/3", "x": 1}' >"$WORK/unknown.json"
if "$PY" "$REPORT" --out "$WORK/out_unknown" "$FIX/bench_models.json" "$WORK/unknown.json" >/dev/null \
     2>"$WORK/err" && grep -q "unknown.json.*skipped" "$WORK/err" && [[ -s "$WORK/out_unknown/benchmarks.csv" ]] \
     && [[ ! -e "$WORK/out_unknown/models.csv" ]]; then
  ok "unknown JSON kind skipped with a warning"
else
  fail "unknown JSON kind: $(cat "$WORK/err")"
fi

# --- 4. without matplotlib: CSV + summaries, a warning naming python3-matplotlib, exit 0
mkdir -p "$WORK/nompl/matplotlib"
echo 'raise ImportError("No module named matplotlib (hidden by test_report.sh)")' >"$WORK/nompl/matplotlib/__init__.py"
if PYTHONPATH="$WORK/nompl" "$PY" "$REPORT" --out "$WORK/out_nompl" "$FIX/classify.json" "$FIX/models_layers.json" \
     >"$WORK/stdout_nompl" 2>"$WORK/err"; then
  before=$fails
  grep -q "python3-matplotlib" "$WORK/err" || fail "no-matplotlib warning does not name python3-matplotlib"
  for f in models.csv layers.csv summary.md summary.html; do [[ -s "$WORK/out_nompl/$f" ]] || fail "no-mpl: $f"; done
  compgen -G "$WORK/out_nompl/*.png" >/dev/null && fail "no-mpl run wrote PNGs"
  grep -qs "python3-matplotlib" "$WORK/out_nompl/summary.md" || fail "no-mpl summary does not say why plots are missing"
  [[ $fails -eq $before ]] && ok "without matplotlib: CSV + summary, warning"
else
  fail "without matplotlib: exit non-zero: $(cat "$WORK/err")"
fi

if [[ $fails -ne 0 ]]; then echo "test_report: $fails failure(s)"; exit 1; fi
echo "test_report: all checks passed"
