#!/usr/bin/env python3
"""An independent .rfpk reader written from docs/PACKAGE.md alone (no project code), used by cli_package.sh to
check that the doc is enough to read every package kind: fp32 / fp16 / int8, zstd, BN-folded, materialised,
deltas, version 1 and version 2 (metadata). It verifies the checksum and payload hash (XXH64 as the doc says),
parses the payload, decodes every stored tensor to floats and prints a JSON summary that the test compares with
`reframe inspect --json`.  Usage: doc_reader.py FILE  (zstd payloads are decompressed with the `zstd` tool)."""
import json
import math
import struct
import subprocess
import sys

M64 = (1 << 64) - 1
P1, P2, P3, P4, P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x85EBCA77C2B2AE63,
                      0x27D4EB2F165667C5)


def rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def xxh64(data, seed=0):
    n, i = len(data), 0
    if n >= 32:
        v = [(seed + P1 + P2) & M64, (seed + P2) & M64, seed, (seed - P1) & M64]
        lanes = struct.unpack_from("<%dQ" % (n // 32 * 4), data)
        for j in range(0, len(lanes), 4):
            for k in range(4):
                v[k] = (rotl((v[k] + lanes[j + k] * P2) & M64, 31) * P1) & M64
        i = n // 32 * 32
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & M64
        for k in range(4):
            h = ((h ^ (rotl((v[k] * P2) & M64, 31) * P1 & M64)) * P1 + P4) & M64
    else:
        h = (seed + P5) & M64
    h = (h + n) & M64
    while i + 8 <= n:
        (k1,) = struct.unpack_from("<Q", data, i)
        h = (rotl(h ^ (rotl((k1 * P2) & M64, 31) * P1 & M64), 27) * P1 + P4) & M64
        i += 8
    if i + 4 <= n:
        (k1,) = struct.unpack_from("<I", data, i)
        h = (rotl(h ^ (k1 * P1 & M64), 23) * P2 + P3) & M64
        i += 4
    while i < n:
        h = (rotl(h ^ (data[i] * P5 & M64), 11) * P1) & M64
        i += 1
    h ^= h >> 33
    h = (h * P2) & M64
    h ^= h >> 29
    h = (h * P3) & M64
    return h ^ (h >> 32)


class Reader:
    def __init__(self, b):
        self.b, self.pos = b, 0

    def u(self, fmt):
        v = struct.unpack_from("<" + fmt, self.b, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return v[0] if len(v) == 1 else v

    def s(self, lenfmt):  # length-prefixed UTF-8 string
        n = self.u(lenfmt)
        v = self.b[self.pos:self.pos + n].decode("utf-8")
        self.pos += n
        return v


def read(path):
    f = open(path, "rb").read()
    assert f[:8] == b"RFPK\r\n\x1a\n", "magic"
    version, header_bytes, flags, stored, raw, phash, base_h, target_h, reserved = struct.unpack_from(
        "<HHIQQQQQQ", f, 8)
    assert version in (1, 2) and header_bytes == 64 and reserved == 0 and flags & ~0xF == 0
    assert stored == len(f) - 72, "payload_stored_bytes"
    (checksum,) = struct.unpack_from("<Q", f, len(f) - 8)
    assert xxh64(f[:-8]) == checksum, "checksum"
    payload = f[64:64 + stored]
    if flags & 1:
        payload = subprocess.run(["zstd", "-dc"], input=payload, capture_output=True, check=True).stdout
    assert len(payload) == raw and xxh64(payload) == phash, "payload_hash"
    r = Reader(payload)
    out = {"version": version, "flags": flags, "config": r.s("I"), "seed_rule": r.s("I"), "base_seed": r.u("Q"),
           "generator": r.s("I"), "distribution": r.s("I")}
    out["seeds"] = [r.u("Q") for _ in range(r.u("I"))]
    if version >= 2:
        h, w, ch = r.u("I"), r.u("I"), r.u("I")
        mean = [r.u("f") for _ in range(ch)]
        std = [r.u("f") for _ in range(ch)]
        out["metadata"] = {"input_h": h, "input_w": w, "mean": mean, "std": std,
                           "classes": [r.s("H") for _ in range(r.u("I"))]}
    entries = []
    for _ in range(r.u("I")):
        name = r.s("H")
        kind, dtype, ndim, tflags = r.u("B"), r.u("B"), r.u("B"), r.u("B")
        shape = [r.u("Q") for _ in range(ndim)]
        entries.append((name, kind, dtype, shape, tflags & 1, r.u("Q"), r.u("Q")))
    pos = (r.pos + 63) // 64 * 64
    tensors = []
    for name, kind, dtype, shape, from_base, off, nbytes in entries:
        assert off == pos, f"{name}: data_offset {off}, expected {pos}"
        numel = math.prod(shape)
        want = 0 if from_base else {0: 4 * numel, 1: 2 * numel, 7: 4 * shape[0] + numel}[dtype]
        assert nbytes == want, f"{name}: data_bytes"
        data = payload[off:off + nbytes]
        if not from_base:  # decode: every value must come out finite
            if dtype == 0:
                vals = struct.unpack("<%df" % numel, data)
            elif dtype == 1:
                vals = struct.unpack("<%de" % numel, data)
            else:
                scales = struct.unpack_from("<%df" % shape[0], data)
                q = struct.unpack_from("<%db" % numel, data, 4 * shape[0])
                cols = numel // shape[0]
                assert all(math.isfinite(s) and s >= 0 for s in scales)
                vals = [scales[i // cols] * q[i] for i in range(numel)]
            assert all(math.isfinite(v) for v in vals), f"{name}: non-finite value"
        tensors.append({"name": name, "kind": ["learnable", "seeded", "state"][kind],
                        "dtype": {0: "f32", 1: "f16", 7: "i8"}[dtype], "shape": shape, "offset": off,
                        "bytes": nbytes, "from_base": bool(from_base)})
        pos = (off + nbytes + 63) // 64 * 64
    end = entries[-1][5] + entries[-1][6] if entries else (r.pos + 63) // 64 * 64
    assert end == len(payload), "the payload must end where the last tensor's data ends"
    out["payload_hash"] = "0x%016x" % phash
    out["tensors"] = tensors
    return out


if __name__ == "__main__":
    print(json.dumps(read(sys.argv[1])))
