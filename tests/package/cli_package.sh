#!/usr/bin/env bash
# End-to-end check of the package commands through the real binary: pack -> inspect -> run, a delta -> apply
# (byte-identical rebuild), and bad inputs that must exit with status 1 (an error, not a crash) and a message
# naming the file and the field. Usage: cli_package.sh REFRAME WORKDIR (run by CTest as cli_package).
set -uo pipefail
R=$1
W=$2
rm -rf "$W" && mkdir -p "$W" && cd "$W"
fail() { echo "cli_package: FAIL: $*"; exit 1; }
expect_error() {  # expect_error NEEDLE CMD...: exit status 1 and NEEDLE in stderr
  local needle=$1
  shift
  local err
  err=$("$@" 2>&1 >/dev/null)
  local rc=$?
  [ $rc -eq 1 ] || fail "'$*' exited $rc (expected 1): $err"
  grep -qF -- "$needle" <<<"$err" || fail "'$*': '$needle' not in: $err"
  echo "ok (exit 1): $err"
}

"$R" pack -m nl-resnet18:cnl=dw -o dw.rfpk || fail "pack"
"$R" pack -m nl-resnet18:cnl=dw --dtype int8 --zstd 3 -o dw_i8.rfpk || fail "pack int8"
"$R" inspect --json dw.rfpk > dw.json || fail "inspect"
grep -q '"learnable": 1107786' dw.json || fail "inspect --json: learnable count is not MODELS.md's 1,107,786"
grep -q '"seeded_from_seeds": 30528' dw.json || fail "inspect --json: seeded count is not 30,528"
# --seeded-hashes: one XXH64 per NL module of the regenerated weights (scripts/check-arm64.sh compares them across
# architectures), the same from any package of the same seeds; the first layer's pinned guards the bits.
"$R" inspect --json --seeded-hashes dw.rfpk > dw_seeded.json || fail "inspect --seeded-hashes"
"$R" inspect --json --seeded-hashes dw_i8.rfpk > dw_i8_seeded.json || fail "inspect --seeded-hashes int8"
python3 -c "
import json
a, b = (json.load(open(f))['seeded_hashes'] for f in ('dw_seeded.json', 'dw_i8_seeded.json'))
assert len(a) == 16 and sum(r['numel'] for r in a) == 30528, (len(a), sum(r['numel'] for r in a))
assert a == b, 'int8 + zstd package regenerates other seeded weights'
assert a[0] == {'name': 'layer1.0.nl1.seeded.weight', 'seed': 0, 'numel': 576, 'xxh64': '0xda508d5bb5a8ca0f'}, a[0]
" || fail "inspect --seeded-hashes: rows"
"$R" inspect --seeded-hashes --no-tensors dw.rfpk | grep -q "layer4.1.nl2.seeded.weight .* 4608 values  xxh64 0x" ||
  fail "inspect --seeded-hashes: text rows"
"$R" run dw_i8.rfpk --reps 1 --warmup 0 --reference dw.rfpk | grep -q "max |diff|" || fail "run --reference"
# run --input streams the file in batches of --batch: the same top-1 and logit difference for every batching,
# and the memory of one batch (not the file).
python3 -c "
import random, struct
random.seed(3)
n = 5 * 3 * 32 * 32
open('x5.bin', 'wb').write(struct.pack('<%df' % n, *[random.gauss(0, 1) for _ in range(n)]))
" || fail "write x5.bin"
"$R" run dw_i8.rfpk --input x5.bin --batch 2 --reps 1 --warmup 0 --reference dw.rfpk --json > run_b2.json || fail "run --input --batch 2"
"$R" run dw_i8.rfpk --input x5.bin --batch 5 --reps 1 --warmup 0 --reference dw.rfpk --json > run_b5.json || fail "run --input --batch 5"
python3 -c "
import json, sys
a, b = json.load(open('run_b2.json')), json.load(open('run_b5.json'))
assert a['images'] == b['images'] == 5 and a['batch'] == 2 and b['batch'] == 5, (a['images'], a['batch'], b['batch'])
assert len(a['top1']) == 5 and a['top1'] == b['top1'], (a['top1'], b['top1'])
da, db = a['logit_max_abs_diff'], b['logit_max_abs_diff']
assert da > 0 and abs(da - db) <= 1e-4 * max(da, db), (da, db)
" || fail "run --input: streamed batches disagree"
# Delta: a re-seeded model (all learnable tensors equal) travels as a few KB and rebuilds byte-identically.
"$R" pack -m nl-resnet18:cnl=dw,seed=9 -o dw9.rfpk || fail "pack seed=9"
"$R" pack --from dw9.rfpk --base dw.rfpk -o dw9.delta.rfpk || fail "pack --base"
[ "$(stat -c %s dw9.delta.rfpk)" -lt 20000 ] || fail "delta is not small"
"$R" apply dw.rfpk dw9.delta.rfpk -o dw9_rebuilt.rfpk || fail "apply"
cmp -s dw9.rfpk dw9_rebuilt.rfpk || fail "apply did not rebuild the package byte for byte"
"$R" run dw9.delta.rfpk --base dw.rfpk --reps 1 --warmup 0 > /dev/null || fail "run --base"

head -c 5000 dw.rfpk > trunc.rfpk
python3 - <<'PY' || fail "python"
b = bytearray(open("dw.rfpk", "rb").read())
b[len(b) // 2] ^= 0x20
open("flip.rfpk", "wb").write(b)
v = bytearray(open("dw.rfpk", "rb").read())
v[8] = 9
open("version.rfpk", "wb").write(v)
PY
expect_error "trunc.rfpk: header field 'payload_stored_bytes'" "$R" inspect trunc.rfpk
expect_error "flip.rfpk: checksum mismatch" "$R" run flip.rfpk
expect_error "version.rfpk: header field 'version' is 9, expected 1 or 2" "$R" inspect version.rfpk
expect_error "header field 'magic'" "$R" inspect dw.json
expect_error "missing.rfpk: cannot open" "$R" inspect missing.rfpk
expect_error "wrong base" "$R" apply dw_i8.rfpk dw9.delta.rfpk -o x.rfpk
expect_error "is a delta" "$R" run dw9.delta.rfpk
[ ! -e x.rfpk ] || fail "a failed apply left an output file"
# predict: images -> classes. Version-1 packages need the metadata on the command line (the error lists it);
# `pack --from --input-size/--mean/--std/--classes` records it (version 2); a wrong-size image is refused
# unless --resize.
python3 - <<'PY' || fail "python png"
import struct, zlib
def png(path, h, w):
    raw = b"".join(b"\x00" + bytes(((x * 7 + y * 3 + c * 50) % 256) for x in range(w) for c in range(3)) for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
import os
os.makedirs("imgs/sub", exist_ok=True)
png("imgs/a.png", 32, 32); png("imgs/sub/b.png", 32, 32); png("big.png", 40, 48)
open("names.txt", "w").write("\n".join(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]) + "\n")
PY
expect_error "dw.rfpk: package format version 1 records no inference metadata" "$R" predict dw.rfpk imgs
expect_error "--mean R,G,B" "$R" predict dw.rfpk imgs
"$R" pack --from dw.rfpk --input-size 32 --mean 0.4914,0.4822,0.4465 --std 0.2023,0.1994,0.2010 \
  --classes @names.txt -o dwm.rfpk > /dev/null || fail "pack with metadata"
"$R" inspect --no-tensors dwm.rfpk | grep -q "reframe package v2" || fail "a package with metadata is not version 2"
"$R" inspect --no-tensors dwm.rfpk | grep -q "10 class names \[airplane,automobile" || fail "inspect metadata"
"$R" pack --from dwm.rfpk -o dwm2.rfpk > /dev/null && "$R" inspect --no-tensors dwm2.rfpk | grep -q "input 32x32" ||
  fail "a repack lost the metadata"
out=$("$R" predict dwm.rfpk imgs --top 3 --batch 1) || fail "predict"
[ "$(grep -c '\.png: ' <<<"$out")" -eq 2 ] || fail "predict: expected a line per image in: $out"
grep -q "imgs/sub/b.png: " <<<"$out" || fail "predict did not search the folder recursively: $out"
"$R" predict dwm.rfpk imgs/a.png --json > pred.json || fail "predict --json"
python3 - <<'PY' || fail "predict --json content"
import json
j = json.load(open("pred.json"))
assert j["schema"] == "reframe.predict/1" and len(j["images"]) == 1, j
im = j["images"][0]
assert len(im["logits"]) == 10 and len(im["probabilities"]) == 10 and len(im["top"]) == 5
assert abs(sum(im["probabilities"]) - 1) < 1e-9
best = max(range(10), key=lambda k: im["logits"][k])
assert im["top"][0]["index"] == best and im["top"][0]["class"] == j["classes"][best]
PY
expect_error "big.png: image is 40x48 (height x width), the package's network input is 32x32; pass --resize" \
  "$R" predict dwm.rfpk big.png
"$R" predict dwm.rfpk big.png --resize > /dev/null || fail "predict --resize"
expect_error "dw_i8.rfpk: package format version 1" "$R" predict dw_i8.rfpk big.png --size 32
expect_error "predict: --std '1,0,1': value 0 must be > 0" "$R" predict dwm.rfpk big.png --std 1,0,1
# Dense packages: boxes (JSON, in the original image's pixels) and a label PNG per image (original size).
M="--mean 0.485,0.456,0.406 --std 0.229,0.224,0.225"
"$R" pack -m nl-resnet18:cnl=dw,task=detect,stem=large,classes=3 --input-size 64x96 $M --classes RBC,WBC,Platelets \
  -o det.rfpk > /dev/null || fail "pack detect"
"$R" predict det.rfpk big.png imgs/a.png --json --score 0.05 > det.json || fail "predict detect"
"$R" pack -m nl-resnet18:cnl=dw,task=segment,stem=large,classes=4 --input-size 64 $M --classes sky,road,car,tree \
  -o seg.rfpk > /dev/null || fail "pack segment"
"$R" predict seg.rfpk big.png imgs/a.png --json --out-dir segout > seg.json || fail "predict segment"
python3 - <<'PY' || fail "dense predict output"
import json, struct, zlib
d = json.load(open("det.json"))
assert d["task"] == "detect" and len(d["images"]) == 2, d
big = d["images"][0]
assert (big["height"], big["width"]) == (40, 48), big
assert big["boxes"], "expected some boxes at score 0.05"
for b in big["boxes"]:
    assert b["class"] in ("RBC", "WBC", "Platelets") and b["score"] >= 0.05
    assert 0 <= b["x0"] <= 48 and 0 <= b["x1"] <= 48 and 0 <= b["y0"] <= 40 and 0 <= b["y1"] <= 40, b
s = json.load(open("seg.json"))
im = s["images"][0]
png = open(im["label_png"], "rb").read()
w, h, depth, ctype = struct.unpack(">IIBB", png[16:26])
assert (h, w, depth, ctype) == (40, 48, 8, 0), (h, w, depth, ctype)
assert abs(sum(im["class_shares"].values()) - 1) < 1e-9
PY
# docs/PACKAGE.md is enough to read every package kind: an independent reader written from the doc alone
# (tests/package/doc_reader.py: checksums, zstd, metadata, directory, offsets, every tensor decoded) must agree
# with `reframe inspect --json` on fp32, fp16, int8+zstd, BN-folded, materialised, delta and version-2 packages.
"$R" pack -m nl-resnet18:cnl=dw --dtype fp16 -o dw_f16.rfpk > /dev/null || fail "pack fp16"
"$R" pack -m nl-resnet18:cnl=dw --fold-bn --dtype int8 -o dw_fold.rfpk > /dev/null || fail "pack folded"
"$R" pack -m nl-resnet18:cnl=dw --materialize -o dw_mat.rfpk > /dev/null || fail "pack materialised"
"$R" pack -m resnet18 --materialize --fold-bn --zstd 1 -o r18.rfpk > /dev/null || fail "pack resnet18"
DOC_READER="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/doc_reader.py"
for f in dw.rfpk dw_f16.rfpk dw_i8.rfpk dw_fold.rfpk dw_mat.rfpk r18.rfpk dw9.delta.rfpk dwm.rfpk det.rfpk; do
  python3 "$DOC_READER" "$f" > "$f.doc.json" || fail "doc_reader.py cannot read $f"
  "$R" inspect --json "$f" > "$f.inspect.json" || fail "inspect $f"
  python3 - "$f" <<'PY' || fail "doc_reader.py and inspect disagree on $f"
import json, sys
f = sys.argv[1]
d, i = json.load(open(f + ".doc.json")), json.load(open(f + ".inspect.json"))
for k in ("version", "config", "seed_rule", "base_seed", "generator", "distribution", "seeds", "payload_hash"):
    assert d[k] == i[k], (f, k, d[k], i[k])
assert len(d["tensors"]) == i["tensor_count"], f
for a, b in zip(d["tensors"], i["tensors"]):
    for k in ("name", "kind", "dtype", "shape", "offset", "bytes", "from_base"):
        assert a[k] == b[k], (f, a["name"], k, a[k], b[k])
if "metadata" in i:
    for k in ("input_h", "input_w", "classes"):
        assert d["metadata"][k] == i["metadata"][k], (f, k)
else:
    assert "metadata" not in d and d["version"] == 1, f
PY
done
# --version: the build facts (the same as every results file's provenance.build_facts).
ver=$("$R" --version) || fail "--version"
for f in "git revision" "compiler" "SIMD level" "CUDA" "cuDNN" "MPI" "oneDNN"; do
  grep -q "^$f " <<<"$ver" || fail "--version lacks '$f': $ver"
done
echo "cli_package: OK"
