#!/usr/bin/env python3
"""Peers: our engine against ONNX Runtime (always) and PyTorch eager (when `import torch` works) on the same
models, batch sizes, input size and thread counts as build/bench_models' forward benchmarks, measured
interleaved: each repetition runs bench_models once (every model and batch) and then each peer on every
(model, batch), in an order that rotates between repetitions; the medians go into JSON (schema
reframe.peers/1) that `reframe report` plots (throughput against batch size, one line per engine) and
tabulates as ratios.

Each model is packed fresh by `reframe pack`, exported by `reframe export --onnx`, and checked before timing:
ONNX Runtime's logits against `reframe run --output` (max |diff| / range <= 1e-5), and PyTorch's (the four
models written below from MODELS.md, loaded with the package's tensors, seeded weights as regenerated, taken from
the exported file's initializers, which keep the package's tensor names) against ONNX Runtime's (1e-4). A peer
that disagrees is recorded and not timed.

Run it with the project's venv (scripts/setup.sh makes .venv/ with onnx, onnxruntime, numpy):
  .venv/bin/python scripts/peers.py --build build --out results/runs/peers.json            # full (minutes)
  .venv/bin/python scripts/peers.py --build build --out /tmp/peers.json --smoke             # seconds
Machine quiet, please: it times. Checked by tests/report/test_peers.sh (the --smoke run into `reframe report`).
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

MODELS = ["resnet18", "nl-resnet18:cnl=dw", "nl-resnet18:cnl=512", "nl-resnet18:cnl=768"]  # bench_models' kModels
BATCHES = [1, 8, 64, 256]  # bench_models' full forward set, 32x32
SMOKE_BATCHES, SMOKE_SIZE = [2], 16  # bench_models --smoke


def run(cmd, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"peers: {' '.join(cmd)}: exit {r.returncode}\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return r.stdout


def parse_config(text):
    arch, _, rest = text.partition(":")
    cfg = {"arch": arch}
    for kv in filter(None, rest.split(",")):
        k, _, v = kv.partition("=")
        cfg[k] = v
    return cfg


# ---- PyTorch: MODELS.md's classification models, written from the spec, on the package's tensors -------------
def torch_forward_fn(torch, cfg, W):
    """x -> logits in PyTorch eager for config cfg (parse_config) with tensors W (name -> torch.Tensor)."""
    F = torch.nn.functional
    nl = cfg["arch"] == "nl-resnet18"
    gpw = int(cfg.get("gpw", 4))
    shuffle = cfg.get("shuffle", "on") == "on"
    large = cfg.get("stem", "cifar") == "large"

    def bn(x, p):
        return F.batch_norm(x, W[p + ".running_mean"], W[p + ".running_var"], W[p + ".weight"], W[p + ".bias"],
                            training=False, eps=1e-5)

    def nlm(x, p, stride):
        cin = x.shape[1]
        ws = W[p + ".seeded.weight"]
        a = F.relu(F.conv2d(x, ws, stride=stride, padding=1, groups=cin // ws.shape[1]))
        b = F.max_pool2d(x, 3, stride, 1)
        first = cin // 5 + cin % 5  # five contiguous groups, the remainder in the first
        sizes = [first] + [cin // 5] * 4
        parts = torch.split(x, sizes, dim=1)
        c = torch.cat([F.avg_pool2d(t, 3 + 2 * j, stride, (3 + 2 * j) // 2, count_include_pad=True)
                       for j, t in enumerate(parts)], 1)
        if stride == 1:
            c = c - x
        z = F.conv2d(torch.cat([a, b, c], 1), W[p + ".pw.weight"], W[p + ".pw.bias"], groups=gpw)
        if shuffle:
            n, C, h, w = z.shape
            z = z.view(n, C // gpw, gpw, h, w).transpose(1, 2).reshape(n, C, h, w)
        return z

    def slot(x, p, stride):
        return nlm(x, p, stride) if nl else F.conv2d(x, W[p + ".weight"], stride=stride, padding=1)

    def forward(x):
        h = F.conv2d(x, W["stem.conv.weight"], stride=2 if large else 1, padding=3 if large else 1)
        h = F.relu(bn(h, "stem.bn"))
        if large:
            h = F.max_pool2d(h, 3, 2, 1)
        s = ".nl" if nl else ".conv"
        for stage in range(4):
            for blk in range(2):
                p = f"layer{stage + 1}.{blk}"
                stride = 2 if stage > 0 and blk == 0 else 1
                y = F.relu(bn(slot(h, p + s + "1", stride), p + ".bn1"))
                y = bn(slot(y, p + s + "2", 1), p + ".bn2")
                sc = h
                if p + ".shortcut.conv.weight" in W:
                    sc = bn(F.conv2d(h, W[p + ".shortcut.conv.weight"], stride=stride), p + ".shortcut.bn")
                h = F.relu(y + sc)
        return F.linear(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1), W["head.fc.weight"], W["head.fc.bias"])

    return forward


class Peer:
    """One engine on one exported model: prepare(threads), then run(x) returns the outputs as numpy."""


class OrtPeer(Peer):
    name = "onnxruntime"

    def __init__(self, path):
        self.path, self.sess, self.threads = path, None, None

    def prepare(self, threads):
        if self.threads != threads:
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self.sess = ort.InferenceSession(self.path, so, providers=["CPUExecutionProvider"])
            self.threads = threads

    def run(self, x):
        return self.sess.run(None, {"input": x})[0]


class TorchPeer(Peer):
    name = "pytorch"

    def __init__(self, torch, model_proto, cfg):
        self.torch = torch
        W = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in model_proto.graph.initializer
             if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) >= 1 and "." in t.name}
        self.fn = torch_forward_fn(torch, cfg, W)

    def prepare(self, threads):
        self.torch.set_num_threads(threads)

    def run(self, x):
        with self.torch.inference_mode():
            return self.fn(self.torch.from_numpy(x)).numpy()


def time_peer(peer, x, min_time):
    """images/s of peer on batch x: one untimed call, then calls until min_time seconds have passed."""
    peer.run(x)
    n, t0 = 0, time.perf_counter()
    while True:
        peer.run(x)
        n += 1
        dt = time.perf_counter() - t0
        if dt >= min_time:
            return x.shape[0] * n / dt


def rel_diff(a, b):
    a, b = np.asarray(a, np.float64).reshape(-1), np.asarray(b, np.float64).reshape(-1)
    span = float(a.max() - a.min())
    d = float(np.abs(a - b).max())
    return d / span if span > 0 else d


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build", help="build folder with reframe and bench_models")
    ap.add_argument("--out", required=True, help="JSON to write (schema reframe.peers/1)")
    ap.add_argument("--models", default=";".join(MODELS), help="model configs, ';'-separated (default: "
                    "bench_models' four)")
    ap.add_argument("--batches", default=None, help="batch sizes (default 1,8,64,256; --smoke: 2)")
    ap.add_argument("--threads", default=None, help="thread counts, e.g. 1,2 (default: OMP_NUM_THREADS or all "
                    "cores, as bench_models)")
    ap.add_argument("--reps", type=int, default=5, help="interleaved repetitions (medians reported)")
    ap.add_argument("--min-time", type=float, default=0.5, help="seconds per measurement (bench_models' "
                    "--benchmark_min_time too)")
    ap.add_argument("--smoke", action="store_true", help="bench_models --smoke shapes (batch 2, 16x16), 1 rep, "
                    "short times: checks the pipeline, measures nothing")
    ap.add_argument("--no-torch", action="store_true", help="leave PyTorch out even when importable")
    a = ap.parse_args()
    reframe, bench = os.path.join(a.build, "reframe"), os.path.join(a.build, "bench_models")
    for exe in (reframe, bench):
        if not os.access(exe, os.X_OK):
            sys.exit(f"peers: {exe} not found (build the reframe and bench_models targets)")
    size = SMOKE_SIZE if a.smoke else 32
    batches = [int(b) for b in (a.batches or ",".join(map(str, SMOKE_BATCHES if a.smoke else BATCHES))).split(",")]
    default_threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or os.cpu_count()
    threads = [int(t) for t in (a.threads or str(default_threads)).split(",")]
    reps, min_time = (1, 0.01) if a.smoke else (a.reps, a.min_time)
    models = [m for m in a.models.split(";") if m]
    torch = None
    if not a.no_torch:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("peers: PyTorch not importable: measuring ONNX Runtime only")

    work = tempfile.mkdtemp(prefix="rf-peers-")
    entries, agreement = [], []
    rng = np.random.default_rng(7)
    for cfg_text in models:
        pkg, path = os.path.join(work, "m.rfpk"), os.path.join(work, f"m{len(entries)}.onnx")
        run([reframe, "pack", "-m", cfg_text, "-o", pkg])
        run([reframe, "export", pkg, "--onnx", path, "--size", str(size)])
        mp = onnx.load(path)
        meta = {p.key: p.value for p in mp.metadata_props}
        name, cfg = meta["reframe.model"], parse_config(meta["reframe.config"])
        # Agreement before timing: ORT against our engine, PyTorch against ORT.
        x = rng.standard_normal((2, 3, size, size), dtype=np.float32)
        xin, xout = os.path.join(work, "x.f32"), os.path.join(work, "y.f32")
        x.tofile(xin)
        run([reframe, "run", pkg, "--input", xin, "--size", str(size), "--batch", "2", "--reps", "1", "--warmup", "0",
             "--output", xout])
        ours = np.fromfile(xout, dtype=np.float32)
        peers = [OrtPeer(path)]
        peers[0].prepare(1)
        d = rel_diff(ours, peers[0].run(x))
        agreement.append({"model": name, "engine": "onnxruntime", "against": "reframe", "max_rel_diff": d,
                          "ok": d <= 1e-5})
        if d > 1e-5:
            print(f"peers: {name}: ONNX Runtime disagrees with reframe (relative {d:.3g}); not timed")
            peers = []
        if torch is not None and peers:
            tp = TorchPeer(torch, mp, cfg)
            tp.prepare(1)
            dt = rel_diff(peers[0].run(x), tp.run(x))
            agreement.append({"model": name, "engine": "pytorch", "against": "onnxruntime", "max_rel_diff": dt,
                              "ok": dt <= 1e-4})
            if dt <= 1e-4:
                peers.append(tp)
            else:
                print(f"peers: {name}: PyTorch disagrees with ONNX Runtime (relative {dt:.3g}); not timed")
        entries.append({"config": cfg_text, "name": name, "peers": peers})
        print(f"peers: {name}: agreement " + ", ".join(f"{g['engine']} {g['max_rel_diff']:.2g}"
                                                     for g in agreement if g["model"] == name))

    samples = {}  # (engine, model, threads, batch) -> [images/s]
    names = "|".join(e["name"] for e in entries)
    flt = f"^BM_forward/({names})/N=({'|'.join(map(str, batches))})/{size}x{size}/"
    for rep in range(reps):
        for t in threads:
            env = dict(os.environ, OMP_NUM_THREADS=str(t))
            out = run([bench, *(["--smoke"] if a.smoke else []), f"--benchmark_filter={flt}",
                       f"--benchmark_min_time={min_time}", "--benchmark_format=json"], env=env)
            for b in json.loads(out[out.index("{"):])["benchmarks"]:
                _, model, nb, _ = b["name"].split("/")[:4]
                samples.setdefault(("reframe", model, t, int(nb.split("=")[1])), []).append(b["items_per_second"])
            order = [(e, p) for e in entries for p in e["peers"]]
            order = order[rep % max(len(order), 1):] + order[:rep % max(len(order), 1)]  # rotate per repetition
            for e, p in order:
                p.prepare(t)
                for nb in batches:
                    x = rng.standard_normal((nb, 3, size, size), dtype=np.float32)
                    samples.setdefault((p.name, e["name"], t, nb), []).append(time_peer(p, x, min_time))
        print(f"peers: repetition {rep + 1}/{reps} done")

    results = [{"engine": k[0], "model": k[1], "threads": k[2], "batch": k[3],
                "images_per_s": statistics.median(v), "samples": v} for k, v in sorted(samples.items())]
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    versions = {"onnxruntime": ort.__version__, "onnx": onnx.__version__, "numpy": np.__version__,
                "python": platform.python_version()}
    if torch is not None:
        versions["pytorch"] = torch.__version__
    doc = {"schema": "reframe.peers/1",
           "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "command": " ".join(sys.argv), "smoke": a.smoke, "input": f"{size}x{size}", "reps": reps,
           "min_time_s": min_time, "threads": threads, "batches": batches,
           "machine": {"cpu": cpu, "cores": os.cpu_count()}, "versions": versions,
           "reframe_version": run([reframe, "--version"]).splitlines()[0],
           "agreement": agreement, "results": results}
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    tmp = f"{a.out}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp, a.out)
    print(a.out)


if __name__ == "__main__":
    main()
