#!/usr/bin/env python3
"""Where the CPU time goes, per op kind: runs a command under `perf record` (oneDNN's JIT kernels named through
DNNL_JIT_PROFILE=2's perf map) and folds the flat symbol profile into the engine's op kinds.

  python3 scripts/profile_ops.py -- build/bench_models --benchmark_filter='BM_forward/nl-resnet18-dw/N=64/'

Shares are of all samples of the process (both OpenMP threads); 'OpenMP wait' is libgomp's spinning at
barriers, which grows when the machine is shared. Needs perf (linux-perf) and perf_event_paranoid <= 2.
No test runs it (it needs perf events); the kind table below is the part to keep in step with the kernels."""
import collections
import os
import re
import subprocess
import sys
import tempfile

# (kind, regex on "dso symbol"): first match wins.
KINDS = [
    ("OpenMP wait/spin", r"libgomp"),
    ("seeded conv (ours, direct)", r"direct_|fill_phase_planes|shifted_sum|store_planes|fill_dy_plane|conv_detail::.*Blocking"),
    ("seeded conv dw (oneDNN jit_dw)", r"jit.*dw|dw_conv"),
    ("grouped 1x1 conv (ours)", r"gemm1x1|mm_block|mm_rows|dots|Conv1x1WeightGrad"),
    ("sgemm (1x1 weight grad <32x32, oneDNN gemm conv)", r"gemm|sgemm"),
    ("oneDNN reorders", r"reorder|uni_reorder"),
    ("oneDNN conv (stem, shortcuts, R18 3x3)", r"jit.*conv|brgconv|brgemm|jit_avx512|\[JIT\]|libdnnl"),
    ("pools (max + mixed avg)", r"pool|box_sum|MaxPlane|max_plane"),
    ("BN eval epilogue (+shuffle, residual, ReLU)", r"batchnorm_eval_epilogue"),
    ("BN (train / plain eval)", r"batchnorm"),
    ("channel shuffle", r"channel_shuffle"),
    ("ReLU / add / elementwise", r"relu_|add_forward|add_backward|elementwise"),
    ("head (global pool, linear), loss, SGD", r"global_avg|linear_|softmax|SGD|sgd"),
    ("seeded weights / input fill", r"seeded_normal|philox|seeded_weights"),
    ("memcpy / memset", r"memmove|memcpy|memset|copy_row"),
    ("allocator", r"malloc|_int_free|free|host_alloc|host_free|cfree"),
    ("kernel", r"\[kernel"),
]


def main(argv):
    if "--" not in argv:
        sys.exit("usage: profile_ops.py -- COMMAND...")
    cmd = argv[argv.index("--") + 1:]
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        env = dict(os.environ, DNNL_JIT_PROFILE="2")
        subprocess.run(["perf", "record", "-q", "-F", "999", "-o", data, "--"] + cmd, env=env, check=True,
                       stdout=sys.stderr)
        rep = subprocess.run(["perf", "report", "-i", data, "--sort", "dso,symbol", "--stdio", "-q"],
                             capture_output=True, text=True, check=True).stdout
    kinds = collections.Counter()
    other = collections.Counter()
    for line in rep.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(.*)", line)
        if not m:
            continue
        pct, rest = float(m.group(1)), re.sub(r"\s+", " ", m.group(2)).strip()
        for kind, rx in KINDS:
            if re.search(rx, rest):
                kinds[kind] += pct
                break
        else:
            kinds["other"] += pct
            other[rest[:90]] += pct
    width = max(len(k) for k in kinds) if kinds else 10
    for kind, pct in kinds.most_common():
        print(f"{kind:<{width}}  {pct:6.1f} %")
    busy = 100 - kinds.get("OpenMP wait/spin", 0)
    print(f"{'(busy, excluding OpenMP wait)':<{width}}  {busy:6.1f} %")
    if os.environ.get("RF_PROFILE_SYMBOLS"):  # the raw top symbols, to check the kind table
        print(rep[:6000], file=sys.stderr)
    if other:
        print("top 'other' symbols:", "; ".join(f"{s} {p:.1f}%" for s, p in other.most_common(5)), file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv)
