"""Loading: the input kinds `reframe report` reads, the fields each must have, and the vocabulary every other
module shares (task -> headline metric, package precisions, the resnet18 baseline, benchmark names).

load_inputs(paths) expands folders, parses each JSON file, sorts it into suite results
(reframe.classify/detect/segment), `reframe models --json --layers` accounting or Google Benchmark JSON, and
checks the fields the tables and plots rely on; a missing or mistyped field raises InputError naming the file
and the field's JSON path (report.py turns it into exit status 2). Unknown kinds are skipped with a warning.
Checked by tests/report/test_report.sh (malformed inputs, unknown kinds).
"""
import json
import os
import re
import sys

SUITE_SCHEMAS = {"reframe.classify": "classify", "reframe.detect": "detect", "reframe.segment": "segment"}
# The task's headline metric: the y axis of the accuracy plots and the first column of the tables.
MAIN_METRIC = {"classify": "test_acc", "detect": "map50", "segment": "miou"}
METRIC_LABEL = {"test_acc": "test accuracy", "map50": "mAP@0.5", "map_coco": "mAP@[.5:.95]", "miou": "mIoU",
                "pixel_acc": "pixel accuracy", "val_acc": "val accuracy"}
PRECISIONS = ("f32", "f16", "i8")
PREC_SUFFIX = {"f16": ("_fp16", "_f16"), "i8": ("_int8", "_i8")}
# The reference model: the "% R18" columns and the "vs resnet18" ratios are relative to it.
BASELINE = "resnet18"
# bench_models' benchmark names: family, model, batch and input size.
MODEL_BENCH_RE = re.compile(r"^BM_(forward|train_step)/([^/]+)/N=(\d+)/(\d+x\d+)")
TIME_TO_MS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}


class InputError(Exception):
    """An input that is unreadable or lacks a field the report needs; the message names the file and field."""


def warn(msg):
    print(f"report: warning: {msg}", file=sys.stderr)


# ----------------------------------------------------------------------------------------------- input checks
def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def need(obj, key, kind, path, where):
    """obj[key] with type kind, or InputError naming the file and the JSON path of the field."""
    field = f"{where}.{key}" if where else key
    if not isinstance(obj, dict) or key not in obj:
        raise InputError(f"{path}: missing required field '{field}'")
    v = obj[key]
    ok = is_num(v) if kind == "number" else isinstance(v, kind)
    if not ok:
        expected = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
        raise InputError(f"{path}: field '{field}' should be {expected}, got {type(v).__name__} {str(v)[:40]!r}")
    return v


def is_metric(v):
    return isinstance(v, dict) and "mean" in v and "std" in v and "values" in v


def metric_names(m):
    """The fields of a suite model entry that are metrics over seeds ({mean, std, values})."""
    return [k for k, v in m.items() if is_metric(v)]


def unique(xs):
    """xs without repeats, in first-seen order."""
    return list(dict.fromkeys(xs))


def is_per_class(v):
    return isinstance(v, list) and v and all(isinstance(e, dict) and "class" in e and "value" in e for e in v)


def check_suite(doc, path, task):
    models = need(doc, "models", list, path, "")
    if not models:
        raise InputError(f"{path}: field 'models' is empty")
    for i, m in enumerate(models):
        w = f"models[{i}]"
        if not isinstance(m, dict):
            raise InputError(f"{path}: field '{w}' should be an object")
        need(m, "model", str, path, w)
        need(m, "config", str, path, w)
        need(m, "macs", "number", path, w)
        need(m, "learnable_params", "number", path, w)
        pb = need(m, "package_bytes", dict, path, w)
        need(pb, "f32", "number", path, w + ".package_bytes")
        main = MAIN_METRIC.get(task)
        if main:
            met = need(m, main, dict, path, w)
            need(met, "mean", "number", path, f"{w}.{main}")
        for k, v in m.items():
            if is_metric(v):
                if not is_num(v["mean"]) or not is_num(v["std"]) or not isinstance(v["values"], list):
                    raise InputError(f"{path}: field '{w}.{k}' should be {{mean: number, std: number, values: []}}")
        tp = m.get("throughput_images_per_s", {})
        if not isinstance(tp, dict) or not all(is_num(x) for x in tp.values()):
            raise InputError(f"{path}: field '{w}.throughput_images_per_s' should map batch -> images/s")
        for b in tp:
            if not str(b).isdigit():
                raise InputError(f"{path}: field '{w}.throughput_images_per_s' has batch key {b!r}, "
                                 "expected an integer")


def check_models(doc, path):
    models = need(doc, "models", list, path, "")
    for i, m in enumerate(models):
        w = f"models[{i}]"
        need(m, "model", str, path, w)
        for j, layer in enumerate(m.get("layers", []) or []):
            lw = f"{w}.layers[{j}]"
            need(layer, "name", str, path, lw)
            need(layer, "type", str, path, lw)
            need(layer, "macs", "number", path, lw)
            need(layer, "learnable", "number", path, lw)


def check_gbench(doc, path):
    benches = need(doc, "benchmarks", list, path, "")
    need(doc, "context", dict, path, "")
    for i, b in enumerate(benches):
        w = f"benchmarks[{i}]"
        need(b, "name", str, path, w)
        if b.get("error_occurred"):
            continue
        need(b, "real_time", "number", path, w)
        unit = need(b, "time_unit", str, path, w)
        if unit not in TIME_TO_MS:
            raise InputError(f"{path}: field '{w}.time_unit' is {unit!r}, expected one of ns, us, ms, s")


def expand_inputs(paths):
    files = []
    for p in paths:
        if os.path.isdir(p):
            found = []
            for entry in sorted(os.listdir(p)):
                full = os.path.join(p, entry)
                if entry.endswith(".json") and os.path.isfile(full):
                    found.append(full)
                elif os.path.isdir(full):
                    found += [os.path.join(full, e) for e in sorted(os.listdir(full))
                              if e.endswith(".json") and os.path.isfile(os.path.join(full, e))]
            if not found:
                warn(f"{p}: folder holds no *.json files")
            files += found
        elif os.path.isfile(p):
            files.append(p)
        else:
            raise InputError(f"{p}: no such file or folder")
    return files


def load_inputs(paths, peers=None):
    """(suites, layer_docs, benches); scripts/peers.py's JSON (reframe.peers) goes into the list peers when given,
    and is skipped with a warning otherwise."""
    suites, layer_docs, benches = [], [], []
    for path in expand_inputs(paths):
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"{path}: cannot read: {e}")
        if not isinstance(doc, dict):
            warn(f"{path}: top level is not an object; skipped (unknown JSON kind)")
            continue
        schema = doc.get("schema")
        base = schema.split("/")[0] if isinstance(schema, str) else None
        if base in SUITE_SCHEMAS:
            task = SUITE_SCHEMAS[base]
            check_suite(doc, path, task)
            suites.append({"path": path, "task": task, "doc": doc})
        elif base == "reframe.models":
            check_models(doc, path)
            layer_docs.append({"path": path, "doc": doc})
        elif base == "reframe.peers" and peers is not None:
            from .peers import check_peers  # peers.py imports this module
            check_peers(doc, path)
            peers.append({"path": path, "doc": doc})
        elif "benchmarks" in doc and "context" in doc:
            check_gbench(doc, path)
            benches.append({"path": path, "doc": doc})
        else:
            warn(f"{path}: unknown JSON kind (schema {schema!r}); skipped")
    return suites, layer_docs, benches
