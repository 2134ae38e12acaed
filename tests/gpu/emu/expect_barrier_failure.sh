#!/usr/bin/env bash
# Proof that the emulated kernel tests catch a missing barrier (issue 12): runs an emulated GPU test binary with
# the N-th __syncthreads() of a .cu file dropped (RF_EMU_DROP_BARRIER=<file>:<line>, cuda/emu/cuda_emu.h) and
# passes only if the emulation announced the drop and the test then FAILED. The line is looked up here, so the
# check follows edits of the kernel file. Registered by CMakeLists.txt as gpu_emu_barrier_dropped_* (gpu-emu).
#   expect_barrier_failure.sh <test binary> <gtest filter> <kernel .cu file> <N (1 = the file's first barrier)>
set -uo pipefail
exe=$1 filter=$2 cu=$3 nth=$4
line=$(grep -n '__syncthreads()' "$cu" | sed -n "${nth}p" | cut -d: -f1)
if [ -z "$line" ]; then
  echo "expect_barrier_failure: $cu has fewer than $nth __syncthreads() calls: update the check in CMakeLists.txt"
  exit 1
fi
spec="$(basename "$cu"):$line"
echo "expect_barrier_failure: dropping the __syncthreads() at $spec, running $exe --gtest_filter=$filter"
out=$(RF_EMU_DROP_BARRIER=$spec "$exe" --gtest_filter="$filter" 2>&1)
rc=$?
grep -E 'RF_EMU_DROP_BARRIER|FAILED|Failure|error' <<<"$out" | head -n 20
# Here-strings, not pipes: grep -q stops reading early, and pipefail would count the writer's SIGPIPE.
if ! grep -q "the __syncthreads() at .*$spec is dropped" <<<"$out"; then
  echo "expect_barrier_failure: FAILED: the barrier at $spec was never reached by $filter (wrong test or line?)"
  exit 1
fi
if [ "$rc" = 0 ] || [ "$rc" = 77 ] || ! grep -q '\[  FAILED  \]' <<<"$out"; then
  echo "expect_barrier_failure: FAILED: $filter still passes without the barrier at $spec (exit $rc):"
  echo "  the emulation or the test no longer detects a missing barrier"
  exit 1
fi
echo "expect_barrier_failure: OK: without the barrier at $spec the test fails (exit $rc), as it must"
