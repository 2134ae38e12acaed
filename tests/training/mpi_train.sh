#!/usr/bin/env bash
# Data-parallel training under Open MPI (CTest mpi_train, label mpi): 2 ranks on this machine over loopback,
# 1 thread each. Checks (training/trainer.h, host/core/comm.h):
#   1. 2 ranks with --sync-bn train the weights 1 process trains from the same global batch, within float
#      summation tolerance after 3 steps (logits of the two packages compared by `reframe run --reference`: 7e-5
#      here, 1e-3 allowed), while per-rank BN gives another model (1e-2);
#   2. a 2-rank run stopped after epoch 1 (--stop-after-epochs: a planned kill) and resumed with --resume ends
#      with the weights of an uninterrupted 2-rank run, bit for bit;
#   3. a suite (bench detect) under mpirun writes its results once, recording world size 2;
#   4. only rank 0 prints (the other rank's output is silent), errors of any rank end the run with status 1;
#   5. --rank-groups 2 over 2 ranks (app/cmd_bench.cpp: each rank a group running one of the suite's 2 seeds,
#      merged at rank 0) writes the results file a 1-process run writes, measured fields aside; bad values refused.
# Skipped (exit 77) when mpirun is absent. About 10-20 s on the shared 2-core machine.
set -euo pipefail
R=${1:?usage: mpi_train.sh path/to/reframe}
if ! command -v mpirun > /dev/null; then
  echo "mpi_train: skipped: mpirun not found (install openmpi-bin: scripts/setup.sh)"
  exit 77
fi
# Open MPI's launcher talks to its ranks over TCP on the loopback interface (also in a chroot or a network
# namespace whose only interface is lo, which was checked): lo must be up.
if command -v ip > /dev/null && ! ip -o link show lo 2> /dev/null | grep -q '[<,]UP[,>]'; then
  echo "mpi_train: FAIL: the loopback interface lo is down; mpirun needs it (ip link set lo up)"
  exit 1
fi
# CI runs as root; loopback only (works in a chroot whose only interface is lo); shared memory between ranks.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl=self,vader OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_btl_tcp_if_include=lo
export OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1
# In the sanitized build (scripts/sanitize.sh) the ranks run without LeakSanitizer: Open MPI's components are
# dlopen'ed and unloaded again in MPI_Finalize, and their never-freed start-up allocations are reported from
# "<unknown module>", which no suppression can match (seen: 30 reports per rank, from libmpi's op selection,
# vasprintf and ld.so). Memory errors and UBSan stay on in the ranks, and the 1-process runs below (no MPI is
# started without mpirun) keep leak checking.
MPIRUN=(env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" mpirun --oversubscribe -np 2 --bind-to none)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
fail() { echo "mpi_train: FAIL: $*"; exit 1; }
# Max |logit difference| between two packages on the same inputs.
logit_diff() { "$R" run "$1" --reference "$2" --batch 4 --threads 1 2>&1 | sed -n 's/.*logits max |diff| \([0-9.e+-]*\).*/\1/p'; }

C=(train -m nl-resnet18:cnl=dw --synthetic-train 48 --image-size 16 --val 0 --batch 16 --lr 0.005 --no-augment
   --bn-recalibrate 0 --threads 1)
A=("${C[@]}" --epochs 1)

# 1. 2 ranks (8 images each of every 16) against 1 process (16), --sync-bn.
"$R" "${A[@]}" --sync-bn -o one.rfpk > one.log 2>&1 || { cat one.log; fail "1-process run"; }
"${MPIRUN[@]}" "$R" "${A[@]}" --sync-bn -o two.rfpk > two.log 2>&1 || { cat two.log; fail "2-rank run"; }
d=$(logit_diff two.rfpk one.rfpk)
echo "mpi_train: 2 ranks --sync-bn vs 1 process after 3 steps: logits max |diff| $d"
[ -n "$d" ] || fail "no logit difference read"
awk -v d="$d" 'BEGIN { exit !(d < 1e-3) }' || fail "2 ranks differ from 1 process by $d (expected < 1e-3)"
# Without --sync-bn each rank normalises its own 8 images: measurably another model (~1e-2 here), which shows
# that the check above can tell the difference.
"${MPIRUN[@]}" "$R" "${A[@]}" -o per_rank_bn.rfpk > per_rank.log 2>&1 || { cat per_rank.log; fail "2-rank run, per-rank BN"; }
d=$(logit_diff per_rank_bn.rfpk one.rfpk)
echo "mpi_train: 2 ranks with per-rank BN vs 1 process: logits max |diff| $d"
awk -v d="$d" 'BEGIN { exit !(d > 5e-3) }' || fail "per-rank BN gave the 1-process weights too ($d): the check cannot tell"
# Rank 0 alone prints: one result line, not two.
[ "$(grep -c 'nl-resnet18-dw: 1 epochs' two.log)" = 1 ] || { cat two.log; fail "expected one result line (rank 0's)"; }

# 2. Stopped after epoch 1 of 2 and resumed, against uninterrupted; both 2 ranks.
B=("${C[@]}" --epochs 2)
"${MPIRUN[@]}" "$R" "${B[@]}" --checkpoint ck.rfpk --stop-after-epochs 1 > stop.log 2>&1 || { cat stop.log; fail "stopped run"; }
[ -f ck.rfpk ] || fail "no checkpoint after the stopped run"
[ ! -f resumed.rfpk ] || fail "a stopped run wrote its package"
"${MPIRUN[@]}" "$R" "${B[@]}" --checkpoint ck.rfpk --resume -o resumed.rfpk > resume.log 2>&1 || { cat resume.log; fail "resume"; }
"${MPIRUN[@]}" "$R" "${B[@]}" -o whole.rfpk > whole.log 2>&1 || { cat whole.log; fail "uninterrupted run"; }
d=$(logit_diff resumed.rfpk whole.rfpk)
echo "mpi_train: resumed vs uninterrupted (2 ranks): logits max |diff| $d"
[ "$d" = 0 ] || fail "the resumed run differs from the uninterrupted one by $d (expected 0)"

# 3. A suite under mpirun (detection: its objective splits batches too): rank 0 writes the results, world size 2.
"${MPIRUN[@]}" "$R" bench detect -m nl-resnet18:cnl=dw --synthetic-train 8 --synthetic-val 4 --synthetic-test 4 \
  --synthetic-size 64 --epochs 1 --batch 4 --neck 16 --pictures 0 --latency-reps 1 --throughput-batches 1 \
  --threads 1 --sync-bn -o det > det.log 2>&1 || { cat det.log; fail "bench detect under mpirun"; }
grep -q '"world_size": 2' det/detect.json || fail "det/detect.json does not record world_size 2"
[ "$(ls det/packages | wc -l)" = 3 ] || fail "expected the 3 packages of one run in det/packages"

# 4. An error on the ranks ends the run with status 1 and one message.
if "${MPIRUN[@]}" "$R" train --synthetic-train 48 --image-size 16 --batch 3 --epochs 1 > err.log 2>&1; then fail "--batch 3 over 2 ranks was accepted"; fi
grep -q "expected >= 2 images per rank" err.log || { cat err.log; fail "no message for --batch 3 over 2 ranks"; }

# 5. Rank groups: 1 model x 2 seeds, one seed per group, against 1 process (the same JSON without what a process
# measures or names for itself: timings, memory, paths, provenance; as tests/suites/test_shard_merge.cpp).
G=(bench classify -m nl-resnet18:cnl=dw --seeds 2 --synthetic-train 40 --synthetic-test 20 --image-size 8 --val 0
   --epochs 1 --batch 8 --latency-reps 1 --throughput-batches 1 --bn-recalibrate 0 --threads 1)
"$R" "${G[@]}" -o g1 > g1.log 2>&1 || { cat g1.log; fail "1-process classify"; }
"${MPIRUN[@]}" "$R" "${G[@]}" --rank-groups 2 -o g2 > g2.log 2>&1 || { cat g2.log; fail "classify --rank-groups 2"; }
[ "$(grep -c '^results: ' g2.log)" = 1 ] || { cat g2.log; fail "expected one results line (world rank 0's)"; }
[ "$(ls g2/packages | wc -l)" = 6 ] || fail "expected the 6 packages of 2 runs in g2/packages: $(ls g2/packages)"
python3 - g1/classify.json g2/classify.json << 'PY' || fail "--rank-groups 2 results differ from the 1-process run's"
import json, sys
def det(j):
    if isinstance(j, dict):
        return {k: det(v) for k, v in j.items() if not (any(w in k for w in ("seconds", "per_s", "latency",
                "throughput")) or k in ("peak_memory_bytes", "max_rss_bytes", "path", "provenance"))}
    return [det(v) for v in j] if isinstance(j, list) else j
one, two = (json.load(open(f)) for f in sys.argv[1:3])
p = two["provenance"]
if (p["world_size"], p.get("rank_groups"), len(p["merged_from"])) != (2, 2, 2): sys.exit(f"provenance {p}")
if det(one) != det(two): sys.exit("results differ:\n%s\n%s" % (json.dumps(det(one)), json.dumps(det(two))))
PY
echo "mpi_train: classify --rank-groups 2 (2 ranks) equals the 1-process run (measured fields aside)"
# Refused before any work, naming the option: more groups than ranks, with --shard, and without mpirun.
refused() {  # refused LOG MESSAGE COMMAND...: the command fails and LOG has MESSAGE
  local log=$1 message=$2
  shift 2
  if "$@" > "$log" 2>&1; then fail "accepted: ${*: -4}"; fi
  grep -q -- "$message" "$log" || { cat "$log"; fail "no message '$message'"; }
}
refused g3.log "--rank-groups 3: expected 1..2" "${MPIRUN[@]}" "$R" "${G[@]}" --rank-groups 3 -o g3
refused g4.log "--rank-groups 2 with --shard 0/2" "${MPIRUN[@]}" "$R" "${G[@]}" --rank-groups 2 --shard 0/2 -o g4
refused g5.log "--rank-groups 2: expected 1..1" "$R" "${G[@]}" --rank-groups 2 -o g5  # without mpirun
[ ! -e g3 ] && [ ! -e g4 ] && [ ! -e g5 ] || fail "a refused --rank-groups run created its --out folder"
echo "mpi_train: ok"
