#!/usr/bin/env bash
# CTest `report_peers` (labels cpu, onnx): scripts/peers.py's JSON into `reframe report`: peers.csv (one row per
# engine, model, threads and batch, with reframe's ratio over it), the peers plot (PNG + SVG) and the ratio
# table of summary.md, on the committed smoke fixture (tests/report/peers/); then, where the venv exists, a fresh
# `peers.py --smoke` run (NL-ResNet-18 dw, batch 2, 16x16: the pipeline, no measurement) through the same path.
# A malformed peers file exits 2 naming the field. About 15 s with the venv, 2 s without.
# Usage: test_peers.sh PYTHON(with matplotlib) REPO_ROOT BUILD_DIR WORKDIR
set -euo pipefail
PY=$1 ROOT=$2 BUILD=$3 W=$4
rm -rf "$W" && mkdir -p "$W"
fail() { echo "FAIL: $*"; exit 1; }
check_report() {  # check_report PEERS_JSON OUT MODEL
  "$PY" "$ROOT/scripts/report.py" --out "$2" "$1" >"$W/stdout" 2>"$W/stderr" || { cat "$W/stderr"; fail "report on $1"; }
  for f in peers.csv summary.md summary.html; do [[ -s $2/$f ]] || fail "$2/$f missing"; done
  if "$PY" -c "import matplotlib" 2>/dev/null; then
    for f in peers_throughput.png peers_throughput.svg; do [[ -s $2/$f ]] || fail "$2/$f missing"; done
  fi
  head -1 "$2/peers.csv" | grep -qx "source,model,input,threads,batch,engine,images_per_s,reframe_over_engine,smoke" ||
    fail "peers.csv header: $(head -1 "$2/peers.csv")"
  grep -q ",$3,.*,reframe,.*,1.0," "$2/peers.csv" || fail "peers.csv: no reframe row for $3"
  grep -q ",$3,.*,onnxruntime," "$2/peers.csv" || fail "peers.csv: no onnxruntime row for $3"
  grep -q "^| $3 | .* | .*x |$" "$2/summary.md" || fail "summary.md: no ratio row for $3"
  grep -q "SMOKE RUN" "$2/summary.md" || fail "summary.md does not flag the smoke run"
}
check_report "$ROOT/tests/report/peers/peers-smoke.json" "$W/fixture" nl-resnet18-dw
echo "ok: fixture -> peers.csv, plot, summary"
# A malformed file: exit 2, the field named.
"$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); d['results'][0]['images_per_s']='fast'; json.dump(d, open(sys.argv[2],'w'))" \
  "$ROOT/tests/report/peers/peers-smoke.json" "$W/bad.json"
set +e; "$PY" "$ROOT/scripts/report.py" --out "$W/bad" "$W/bad.json" 2>"$W/bad.err"; rc=$?; set -e
[[ $rc -eq 2 ]] && grep -q "results\[0\].images_per_s" "$W/bad.err" || fail "malformed peers file: exit $rc, $(cat "$W/bad.err")"
echo "ok: malformed peers JSON refused"
VPY=$ROOT/.venv/bin/python
if [[ ! -x $VPY || ! -x $BUILD/bench_models || ! -x $BUILD/reframe ]]; then
  echo "note: no venv at $VPY or no reframe/bench_models in $BUILD: the live peers.py --smoke run is skipped"
  exit 0
fi
"$VPY" "$ROOT/scripts/peers.py" --build "$BUILD" --out "$W/live.json" --smoke --models "nl-resnet18:cnl=dw" >"$W/peers.log" ||
  { cat "$W/peers.log"; fail "peers.py --smoke"; }
check_report "$W/live.json" "$W/live" nl-resnet18-dw
echo "ok: peers.py --smoke -> report"
