#!/usr/bin/env bash
# `reframe gate` end to end on the fixtures of tests/report (a real classify run, bench_models and
# bench_kernels JSON): writing a baseline; the same run passes (exit 0); an injected regression in a copy of
# the run (more package bytes, a slower kernel, lower accuracy) exits with the number of regressions and the
# table names the row; --confirm keeps only a ratio that regresses twice; a malformed input exits non-zero naming the file.
# Issue 18: every baseline or input that yields no figure, is of another kind or holds a malformed field is an
# error naming the file (and field); missing figures are named; warnings are printed; timing ratios are compared
# only against a baseline of this machine class (skipped with the reason otherwise, --force-ratios overrides).
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

# expect_error NAME PATTERN... -- ARGS...: `reframe gate ARGS` exits non-zero and stderr holds every PATTERN (grep -F).
expect_error() {
  local name=$1; shift
  local pats=()
  while [ "$1" != "--" ]; do pats+=("$1"); shift; done
  shift
  set +e
  "$RF" gate "$@" > "$WORK/$name.out" 2> "$WORK/$name.err"
  local rc=$?
  set -e
  [ "$rc" != 0 ] || fail "$name: exit 0 (stdout: $(head -c 300 "$WORK/$name.out"))"
  for p in "${pats[@]}"; do
    grep -qF -- "$p" "$WORK/$name.err" || fail "$name: '$p' not in stderr: $(head -c 600 "$WORK/$name.err")"
  done
}
KNOWN="expected suite results"

# Baselines that yield no figure: errors naming the file and what was expected, never "0 regressions".
mkdir -p "$WORK/bl"
echo '{}' > "$WORK/bl/empty_object.json"
echo '[]' > "$WORK/bl/empty_array.json"
echo '{"schema": "reframe.report/1", "figures": [{"name": "x", "kind": "exact", "value": 1}]}' > "$WORK/bl/other_schema.json"
echo '{"schema": "reframe.gate/1", "figures": []}' > "$WORK/bl/no_figures.json"
echo '{"schema": "reframe.gate/1"}' > "$WORK/bl/no_figure_list.json"
echo '{"schema": "reframe.classify/1", "models": []}' > "$WORK/bl/no_models.json"
echo '{"benchmarks": [], "context": {}}' > "$WORK/bl/no_benchmarks.json"
echo 'not json' > "$WORK/bl/not_json.json"
expect_error bl_empty_object "empty_object.json" "$KNOWN" -- --baseline "$WORK/bl/empty_object.json" --current "$WORK/run"
expect_error bl_empty_array "empty_array.json" "a JSON array" "$KNOWN" -- --baseline "$WORK/bl/empty_array.json" --current "$WORK/run"
expect_error bl_other_schema "other_schema.json" "reframe.report/1" "$KNOWN" -- --baseline "$WORK/bl/other_schema.json" --current "$WORK/run"
expect_error bl_no_figures "no_figures.json" "'figures' is an empty list" -- --baseline "$WORK/bl/no_figures.json" --current "$WORK/run"
expect_error bl_no_figure_list "no_figure_list.json" "missing field 'figures'" -- --baseline "$WORK/bl/no_figure_list.json" --current "$WORK/run"
expect_error bl_no_models "no_models.json" "'models' is []" "non-empty array of models" -- --baseline "$WORK/bl/no_models.json" --current "$WORK/run"
expect_error bl_no_benchmarks "no_benchmarks.json" "without a timing ratio" "yields no figure" -- --baseline "$WORK/bl/no_benchmarks.json" --current "$WORK/run"
# bench_kernels.json of the fixtures holds kernels without their references: no ratio, so nothing to gate.
expect_error bl_no_twins "bench_kernels.json" "without a timing ratio" "yields no figure" -- --baseline "$WORK/run/bench_kernels.json" --current "$WORK/run"
expect_error bl_not_json "not_json.json" "not valid JSON" -- --baseline "$WORK/bl/not_json.json" --current "$WORK/run"
truncate -s 70M "$WORK/bl/huge.json"  # sparse: no disk used
expect_error bl_huge "huge.json" "73400320 bytes" "at most 64 MiB" -- --baseline "$WORK/bl/huge.json" --current "$WORK/run"
rm -f "$WORK/bl/huge.json"
expect_error bl_absent "absent.json" "no such file" -- --baseline "$WORK/bl/absent.json" --current "$WORK/run"
# A malformed field of the baseline: file, figure and field named.
"$PY" - "$WORK/base.json" "$WORK/bl/bad_value.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1])); d["figures"][3]["value"] = "big"; json.dump(d, open(sys.argv[2], "w"))
PYEOF
expect_error bl_bad_value "bad_value.json" "figures[3]" "field 'value'" "expected a number" -- --baseline "$WORK/bl/bad_value.json" --current "$WORK/run"

# Current inputs: of another kind (named) or malformed: errors naming the file and field.
cp "$FIX/models_layers.json" "$WORK/layers.json"
expect_error cur_other_kind "layers.json" "reframe.models/1" "$KNOWN" -- --baseline "$WORK/base.json" --current "$WORK/run" "$WORK/layers.json"
mkdir -p "$WORK/only_layers" && cp "$FIX/models_layers.json" "$WORK/only_layers/"
expect_error cur_folder_nothing "only_layers" "folder yields no figure" -- --baseline "$WORK/base.json" --current "$WORK/only_layers"
rm -rf "$WORK/badtype" && cp -r "$WORK/run" "$WORK/badtype"
"$PY" - "$WORK/badtype/classify.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1])); d["models"][1]["macs"] = "lots"; json.dump(d, open(sys.argv[1], "w"))
PYEOF
expect_error cur_bad_type "badtype/classify.json" "models[1]" "field 'macs'" "expected a number" -- --baseline "$WORK/base.json" --current "$WORK/badtype"
rm -rf "$WORK/badacc" && cp -r "$WORK/run" "$WORK/badacc"
"$PY" - "$WORK/badacc/classify.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1])); d["models"][0]["test_acc"] = 0.9; json.dump(d, open(sys.argv[1], "w"))
PYEOF
expect_error cur_bad_metric "badacc/classify.json" "test_acc" "expected an object" -- --baseline "$WORK/base.json" --current "$WORK/badacc"

# A figure of the baseline that the run lacks: non-zero exit, the missing figures named.
rm -rf "$WORK/nomodels" && mkdir -p "$WORK/nomodels" && cp "$WORK/run/classify.json" "$WORK/run/bench_kernels.json" "$WORK/nomodels/"
expect_error cur_missing "missing from this run" "ratio/BM_forward/nl-resnet18-dw_over_resnet18/N=8/32x32" -- \
  --baseline "$WORK/base.json" --current "$WORK/nomodels"
grep -q "MISSING" "$WORK/cur_missing.out" || fail "cur_missing: no MISSING row in the table"

# Warnings are printed: a file of another kind in a folder is skipped with a warning; the gate still passes.
rm -rf "$WORK/withlayers" && cp -r "$WORK/run" "$WORK/withlayers" && cp "$FIX/models_layers.json" "$WORK/withlayers/"
"$RF" gate --baseline "$WORK/base.json" --current "$WORK/withlayers" > /dev/null 2> "$WORK/warn.err" \
  || fail "folder with an extra file: exit $?"
grep -q "warning: .*models_layers.json.*skipped" "$WORK/warn.err" || fail "no warning for the skipped file: $(cat "$WORK/warn.err")"

# Machine classes. The baseline written here records this machine: its ratios are compared (the kernel
# injection above failed). Another class or no machine: ratios skipped with the reason, counts still gated.
CLASS=$("$RF" gate --machine-class 2> /dev/null)
echo "$CLASS" | grep -qE '^(avx512|avx2|neon|portable)-[0-9]+t-[a-z0-9-]+$' || fail "machine class '$CLASS'"
"$PY" - "$WORK/base.json" "$CLASS" <<'PYEOF' || fail "baseline machine not recorded"
import json, sys
m = json.load(open(sys.argv[1]))["machine"]
assert m["class"] == sys.argv[2], m
assert m["simd"] in ("avx512", "avx2", "neon", "portable") and m["threads"] >= 1 and m["cpu"] and m["compiler"], m
PYEOF
"$PY" - "$WORK/base.json" "$WORK" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
other = json.loads(json.dumps(d)); other["machine"]["simd"] = "portable" if d["machine"]["simd"] != "portable" else "avx2"
json.dump(other, open(sys.argv[2] + "/base_other.json", "w"))
unknown = json.loads(json.dumps(d)); del unknown["machine"]
json.dump(unknown, open(sys.argv[2] + "/base_unknown.json", "w"))
ratios = json.loads(json.dumps(unknown)); ratios["figures"] = [f for f in d["figures"] if f["kind"] == "ratio"]
json.dump(ratios, open(sys.argv[2] + "/base_ratios_only.json", "w"))
PYEOF
for b in other unknown; do
  set +e
  "$RF" gate --baseline "$WORK/base_$b.json" --current "$WORK/kernel" > "$WORK/m_$b.md" 2> "$WORK/m_$b.err"
  rc=$?
  set -e
  [ "$rc" = 0 ] || fail "slow kernel vs a baseline of machine '$b': exit $rc, expected 0 (ratios skipped)"
  grep -q "timing ratios NOT compared" "$WORK/m_$b.err" || fail "machine $b: no skip message: $(cat "$WORK/m_$b.err")"
  grep -q "timing ratios were not compared" "$WORK/m_$b.md" || fail "machine $b: table does not say ratios were skipped"
  set +e
  "$RF" gate --baseline "$WORK/base_$b.json" --current "$WORK/bytes" > /dev/null 2>&1
  rc=$?
  set -e
  [ "$rc" = 1 ] || fail "more bytes vs a baseline of machine '$b': exit $rc, expected 1 (counts still gated)"
  set +e
  "$RF" gate --baseline "$WORK/base_$b.json" --current "$WORK/kernel" --force-ratios > /dev/null 2> "$WORK/f_$b.err"
  rc=$?
  set -e
  [ "$rc" = 1 ] || fail "--force-ratios vs machine '$b': exit $rc, expected 1"
  grep -q "warning: --force-ratios" "$WORK/f_$b.err" || fail "--force-ratios: no warning"
done
grep -q "SIMD level: " "$WORK/m_other.err" || fail "other machine: the differing field is not named: $(cat "$WORK/m_other.err")"
grep -q "machine unknown" "$WORK/m_unknown.err" || fail "no machine: not called unknown: $(cat "$WORK/m_unknown.err")"
# A baseline of timing ratios only, from an unknown machine: nothing would be compared, which is an error.
expect_error nothing_compared "nothing compared" "base_ratios_only.json" -- --baseline "$WORK/base_ratios_only.json" --current "$WORK/run"

[ "$fails" = 0 ] && echo "cli_gate: all checks passed" || { echo "cli_gate: $fails failure(s)"; exit 1; }
