#!/usr/bin/env bash
# CTest `bench_ab` (label cpu): scripts/bench_ab.py on two fake bench_models (scripts that log how they were
# called and write fixed Google Benchmark JSON): the runs alternate A B, B A; the table has every round, the
# medians, the change and the ratio to ResNet-18 of the same run; --out is JSON. Bad input exits 2 naming the
# option or binary, a failing or garbled run exits 1 naming the binary. About 1 s.
# Usage: test_bench_ab.sh PYTHON REPO_ROOT WORKDIR
set -euo pipefail
PY=$1 ROOT=$2 W=$3
rm -rf "$W" && mkdir -p "$W"
fail() { echo "FAIL: $*"; exit 1; }
fake() {  # fake NAME DW_IMAGES_PER_S: a bench_models that writes ResNet-18 at 50 and NL-dw at the given rate
  cat >"$W/$1" <<SH
#!/usr/bin/env bash
out=""
for a in "\$@"; do case "\$a" in --benchmark_out=*) out=\${a#--benchmark_out=} ;; esac; done
echo "$1 threads=\$OMP_NUM_THREADS \$*" >>"$W/calls.log"
row() {
  echo "{\"name\": \"BM_train_step/\$1/N=64/32x32/real_time_median\", \"run_type\": \"aggregate\","
  echo " \"aggregate_name\": \"median\", \"items_per_second\": \$2}"
}
echo "{\"context\": {}, \"benchmarks\": [\$(row resnet18 50), \$(row nl-resnet18-dw $2)]}" >"\$out"
SH
  chmod +x "$W/$1"
}
fake old 150
fake new 165
"$PY" "$ROOT/scripts/bench_ab.py" "$W/old" "$W/new" --rounds 3 --threads 3 --reps 2 --out "$W/ab.json" \
  >"$W/table.md" 2>"$W/stderr" || { cat "$W/stderr"; fail "bench_ab.py on the fakes"; }
[[ $(cut -d' ' -f1 "$W/calls.log" | tr '\n' ' ') == "old new new old old new " ]] ||
  fail "order of the runs: $(cut -d' ' -f1 "$W/calls.log" | tr '\n' ' ')"
grep -q "threads=3 .*--benchmark_repetitions=2 " "$W/calls.log" ||
  fail "threads or repetitions not passed: $(head -1 "$W/calls.log")"
dw="| train_step/nl-resnet18-dw/N=64/32x32 | 150.0, 150.0, 150.0 | 165.0, 165.0, 165.0 | 150.0 → 165.0 | +10.0 %"
grep -qF "$dw | 3.00× → 3.30× |" "$W/table.md" || { cat "$W/table.md"; fail "the NL-dw row"; }
r18="| train_step/resnet18/N=64/32x32 | 50.0, 50.0, 50.0 | 50.0, 50.0, 50.0 | 50.0 → 50.0 | +0.0 % | — |"
grep -qF "$r18" "$W/table.md" || { cat "$W/table.md"; fail "the ResNet-18 row"; }
"$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['results'][0]['b_over_resnet18'] == [3.3]*3, d" \
  "$W/ab.json" || fail "--out JSON"
echo "ok: alternated runs, table, --out"
expect() {  # expect RC PATTERN ARGS...: bench_ab.py exits RC with PATTERN in its stderr
  local rc=$1 pat=$2; shift 2
  set +e; "$PY" "$ROOT/scripts/bench_ab.py" "$@" >/dev/null 2>"$W/err"; local got=$?; set -e
  [[ $got -eq $rc ]] && grep -q -- "$pat" "$W/err" || fail "bench_ab.py $*: exit $got, $(cat "$W/err")"
}
expect 2 "B = '$W/missing' is not an executable file" "$W/old" "$W/missing"
expect 2 "\-\-rounds 0 is out of range" "$W/old" "$W/new" --rounds 0
expect 2 "\-\-out $W/no/such/ab.json: its folder does not exist" "$W/old" "$W/new" --out "$W/no/such/ab.json"
printf '#!/usr/bin/env bash\necho "cannot run" >&2\nexit 3\n' >"$W/broken" && chmod +x "$W/broken"
expect 1 "'$W/broken' exited with 3: cannot run" "$W/old" "$W/broken" --rounds 1
printf '#!/usr/bin/env bash\nfor a; do case "$a" in --benchmark_out=*) echo "not json" >"${a#%s}";; esac; done\n' \
  --benchmark_out= >"$W/garbled" && chmod +x "$W/garbled"
expect 1 "'$W/garbled' wrote no readable benchmark JSON" "$W/garbled" "$W/new" --rounds 1
echo "ok: bad options and failing runs refused"
