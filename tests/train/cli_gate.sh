#!/usr/bin/env bash
# `reframe gate` end to end on the fixtures of tests/report (a real classify run, bench_models and
# bench_kernels JSON): writing a baseline; the same run passes (exit 0); an injected regression in a copy of
# the run (more package bytes, a slower kernel, lower accuracy) exits with the number of regressions and the
# table names the row; --confirm keeps only a ratio that regresses twice; a malformed input exits non-zero naming the file.
# Usage: cli_gate.sh REFRAME PYTHON WORKDIR
set -euo pipefail
RF=${1:?usage: cli_gate.sh REFRAME PYTHON WORKDIR}
PY=${2:?}
WORK=${3:?}
FIX="$(cd "$(dirname "$0")/../report/fixtures" && pwd)"
rm -rf "$WORK" && mkdir -p "$WORK/run"
cp "$FIX/classify.json" "$FIX/bench_models.json" "$FIX/bench_kernels.json" "$WORK/run/"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

"$RF" gate --write-baseline "$WORK/base.json" --current "$WORK/run" > /dev/null
"$RF" gate --baseline "$WORK/base.json" --current "$WORK/run" > "$WORK/same.md" || fail "unchanged run: exit $?"
grep -q "0 regressions" "$WORK/same.md" || fail "unchanged run: no '0 regressions' line"

# inject ONE_EDIT (python code on `d`, the loaded JSON of FILE) into a copy; expect exit N and ROW in the table
inject() {
  local name=$1 file=$2 edit=$3 want=$4 row=$5
  rm -rf "$WORK/$name" && cp -r "$WORK/run" "$WORK/$name"
  "$PY" - "$WORK/$name/$file" "$edit" <<'PYEOF'
import json, sys
path, edit = sys.argv[1], sys.argv[2]
d = json.load(open(path))
exec(edit)
json.dump(d, open(path, "w"))
PYEOF
  set +e
  "$RF" gate --baseline "$WORK/base.json" --current "$WORK/$name" > "$WORK/$name.md"
  local rc=$?
  set -e
  [ "$rc" = "$want" ] || fail "$name: exit $rc, expected $want"
  grep -F "$row" "$WORK/$name.md" | grep -q -E "REGRESSED|CHANGED" || fail "$name: row $row not named as a regression"
}
inject bytes classify.json \
  "m=[m for m in d['models'] if m['model']=='nl-resnet18-dw'][0]; m['package_bytes']['f32'] += 4096" \
  1 "classify/nl-resnet18-dw/package_bytes/f32"
inject accuracy classify.json \
  "m=[m for m in d['models'] if m['model']=='nl-resnet18-dw'][0]; a=m['test_acc']; a['values']=[v-0.25 for v in a['values']]; a['mean']-=0.25" \
  1 "classify/nl-resnet18-dw/test_acc"
inject kernel bench_models.json \
  "[b.update(real_time=b['real_time']*3, cpu_time=b['cpu_time']*3) for b in d['benchmarks'] if b['name'].startswith('BM_forward/nl-resnet18-dw/N=8/')]" \
  1 "ratio/BM_forward/nl-resnet18-dw_over_resnet18/N=8/32x32"

# --confirm: the slow kernel measured again at its old speed is noise (exit 0, row listed); measured slow
# twice it stays a regression.
"$RF" gate --baseline "$WORK/base.json" --current "$WORK/kernel" --confirm "$WORK/run" > "$WORK/noise.md" \
  || fail "confirmed as noise: exit $?"
grep -F "ratio/BM_forward/nl-resnet18-dw_over_resnet18/N=8/32x32" "$WORK/noise.md" | grep -q "the first was noise" \
  || fail "confirmed as noise: row not listed as measured twice"
set +e
"$RF" gate --baseline "$WORK/base.json" --current "$WORK/kernel" --confirm "$WORK/kernel" > "$WORK/twice.md"
rc=$?
set -e
[ "$rc" = 1 ] || fail "regressed twice: exit $rc, expected 1"
grep -q "both regress" "$WORK/twice.md" || fail "regressed twice: note missing"

echo '{"schema": "reframe.classify/1", "models": [{"model": "x"}]}' > "$WORK/bad.json"
set +e
"$RF" gate --baseline "$WORK/base.json" --current "$WORK/bad.json" 2> "$WORK/bad.err" > /dev/null
rc=$?
set -e
[ "$rc" != 0 ] || fail "malformed input: exit 0"
grep -q "bad.json" "$WORK/bad.err" || fail "malformed input: file not named: $(cat "$WORK/bad.err")"

[ "$fails" = 0 ] && echo "cli_gate: all checks passed" || { echo "cli_gate: $fails failure(s)"; exit 1; }
