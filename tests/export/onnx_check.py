#!/usr/bin/env python3
"""An exported model against ONNX Runtime: onnx.checker (full check), the metadata, then ONNX Runtime's outputs
against `reframe run --output` on the same inputs, random N(0,1) and real images (decoded here, normalised with
the model's metadata as a user would), at two batch sizes (the batch dimension is dynamic).
Passes when max |ours - ORT| / (max(ours) - min(ours)) <= --tol for every input set. Run with the venv's
python by tests/export/onnx_runtime.sh (CTest `onnx_runtime`).

Usage: onnx_check.py REFRAME PACKAGE MODEL.onnx WORKDIR [--images FILE...] [--tol 1e-5] [--random 3]
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort

# MODELS.md's CIFAR-10 normalisation: for packages that record none (freshly packed ones).
DEFAULT_MEAN, DEFAULT_STD = [0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010]


def load_images(paths, h, w, mean, std):
    from PIL import Image
    out = []
    for p in paths:
        im = Image.open(p).convert("RGB")
        if im.size != (w, h):
            im = im.resize((w, h), Image.BILINEAR)
        a = np.asarray(im, dtype=np.float32) / np.float32(255)
        a = (a - np.array(mean, np.float32)) / np.array(std, np.float32)
        out.append(a.transpose(2, 0, 1))
    return np.ascontiguousarray(np.stack(out), dtype=np.float32)


def ours(reframe, package, x, work, tag):
    inp, outp = os.path.join(work, tag + ".in.f32"), os.path.join(work, tag + ".out.f32")
    x.tofile(inp)
    cmd = [reframe, "run", package, "--input", inp, "--size", str(x.shape[2]), "--batch", str(x.shape[0]),
           "--reps", "1", "--warmup", "0", "--output", outp]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)}: exit {r.returncode}\n{r.stdout}{r.stderr}")
    return np.fromfile(outp, dtype=np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("reframe")
    ap.add_argument("package")
    ap.add_argument("onnx_file")
    ap.add_argument("work")
    ap.add_argument("--images", nargs="*", default=[])
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--random", type=int, default=3)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)

    model = onnx.load(a.onnx_file)
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    for key in ("reframe.config", "reframe.input", "reframe.output", "reframe.normalisation", "reframe.classes",
                "reframe.seeds", "reframe.package"):
        if key not in meta:
            sys.exit(f"FAIL: {a.onnx_file}: metadata '{key}' missing")
    inp = json.loads(meta["reframe.input"])
    _, c, h, w = inp["shape"]
    norm = meta["reframe.normalisation"]
    mean, std = (DEFAULT_MEAN, DEFAULT_STD) if not norm.startswith("{") else \
        (json.loads(norm)["mean"], json.loads(norm)["std"])
    name = meta["reframe.model"]

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(a.onnx_file, so, providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name
    assert in_name == inp["name"], (in_name, inp)

    rng = np.random.default_rng(12345)
    sets = [("random", rng.standard_normal((a.random, c, h, w), dtype=np.float32))]
    if a.images:
        sets.append(("real", load_images(a.images, h, w, mean, std)))
    worst = 0.0
    for tag, x in sets:
        theirs = sess.run(None, {in_name: x})[0]
        mine = ours(a.reframe, a.package, x, a.work, tag)
        if mine.size != theirs.size:
            sys.exit(f"FAIL: {name} {tag}: reframe gave {mine.size} values, ONNX Runtime {theirs.shape}")
        theirs = theirs.reshape(-1)
        span = float(mine.max() - mine.min())
        diff = float(np.abs(mine.astype(np.float64) - theirs).max())
        rel = diff / span if span > 0 else diff
        worst = max(worst, rel)
        agree = ""
        if meta["reframe.task"] == "classify":
            k = theirs.size // x.shape[0]
            same = (mine.reshape(-1, k).argmax(1) == theirs.reshape(-1, k).argmax(1)).mean()
            agree = f", top-1 agreement {same:.0%}"
        print(f"{name} {tag} {tuple(x.shape)}: max |diff| {diff:.3g}, output range {span:.3g}, "
              f"relative {rel:.3g}{agree}")
        if not rel <= a.tol:
            sys.exit(f"FAIL: {a.onnx_file} ({name}) {tag}: max |diff| / range = {rel:.3g} > {a.tol}")
    print(f"ok: {a.onnx_file}: {name}, worst relative difference {worst:.3g} <= {a.tol}")


if __name__ == "__main__":
    main()
