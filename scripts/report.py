#!/usr/bin/env python3
"""reframe report: suite results (classify/detect/segment JSON), `reframe models --json --layers` accounting and
Google Benchmark JSON into CSV tables, plots (PNG + SVG) and a Markdown/HTML summary.

Usage: report.py --out OUTDIR INPUT...   (an INPUT folder means every *.json in it and in its direct subfolders)
Exit status: 0 done (plots are skipped with a warning when matplotlib is missing), 2 an input is unreadable or
lacks a field the report needs (the message names the file and the field).
Checked by tests/report/test_report.sh (fixtures in tests/report/fixtures/).
Python 3 standard library; matplotlib (Agg) + numpy for the plots only.
"""
import argparse
import csv
import datetime
import html
import io
import json
import math
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
PREC_MARKER = {"f32": "o", "f16": "s", "i8": "^"}
BASELINE = "resnet18"
# Metrics that time the run rather than score the model: kept in CSV, left out of the quality columns.
# regen_seconds_median: warm (median of regen_reps calls); regen_cold_seconds: the single first call at load;
# regen_seconds: older results, a single cold call.
TIMING_METRICS = ("regen_seconds", "regen_seconds_median", "regen_cold_seconds", "train_seconds_per_epoch")
GBENCH_STD_KEYS = {"name", "family_index", "per_family_instance_index", "run_name", "run_type", "repetitions",
                   "repetition_index", "threads", "iterations", "real_time", "cpu_time", "time_unit", "label",
                   "aggregate_name", "aggregate_unit", "error_occurred", "error_message", "items_per_second",
                   "bytes_per_second"}
MODEL_BENCH_RE = re.compile(r"^BM_(forward|train_step)/([^/]+)/N=(\d+)/(\d+x\d+)")
TIME_TO_MS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}


class InputError(Exception):
    pass


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


def load_inputs(paths):
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
        elif "benchmarks" in doc and "context" in doc:
            check_gbench(doc, path)
            benches.append({"path": path, "doc": doc})
        else:
            warn(f"{path}: unknown JSON kind (schema {schema!r}); skipped")
    return suites, layer_docs, benches


# ----------------------------------------------------------------------------------------------- tables
def metric_names(m):
    return [k for k, v in m.items() if is_metric(v)]


def precision_metric(m, task, prec):
    """(mean, std) of the main metric for one package precision, or None when the suite did not measure it."""
    main = MAIN_METRIC.get(task)
    if not main:
        return None
    if prec == "f32":
        v = m.get(main)
        return (v["mean"], v["std"]) if is_metric(v) else None
    for suf in PREC_SUFFIX[prec]:
        v = m.get(main + suf)
        if is_metric(v):
            return (v["mean"], v["std"])
    vals = [r["packages"][prec][main] for r in m.get("runs", []) or []
            if isinstance(r, dict) and is_num(r.get("packages", {}).get(prec, {}).get(main))]
    if not vals:
        return None
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((x - mean) ** 2 for x in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return (mean, std)


def baseline_of(suite):
    for m in suite["doc"]["models"]:
        if m["model"] == BASELINE:
            return m
    for m in suite["doc"]["models"]:
        if m["config"].split(":")[0] == BASELINE and not m["model"].startswith("nl-"):
            return m
    return None


def pct(x, base):
    return 100.0 * x / base if is_num(x) and is_num(base) and base else None


def flat_scalars(m, skip):
    """Scalar fields (and one level of number-valued objects, e.g. peak_memory_bytes.train_tensors) not in skip."""
    out = {}
    for k, v in m.items():
        if k in skip:
            continue
        if is_num(v):
            out[k] = v
        elif isinstance(v, dict) and not is_metric(v) and v and all(is_num(x) for x in v.values()):
            for kk, vv in v.items():
                out[f"{k}.{kk}"] = vv
    return out


def suite_model_rows(suites):
    metric_cols, batches, extra_cols = [], set(), []
    for s in suites:
        main = MAIN_METRIC.get(s["task"])
        for m in s["doc"]["models"]:
            names = metric_names(m)
            if main in names:
                names.remove(main)
                names.insert(0, main)
            for n in names:
                if n not in metric_cols:
                    metric_cols.append(n)
            batches.update(int(b) for b in m.get("throughput_images_per_s", {}))
    # the headline metrics of each task first
    metric_cols.sort(key=lambda n: 0 if n in MAIN_METRIC.values() else 1)
    known = {"model", "config", "macs", "learnable_params", "seeded_weights", "bn_state", "package_bytes",
             "device_storage_bytes", "peak_memory_bytes", "latency_batch1_ms", "throughput_images_per_s", "runs"}
    rows = []
    for s in suites:
        ds = s["doc"].get("dataset", {})
        base = baseline_of(s)
        bf32 = base["package_bytes"]["f32"] if base else None
        for m in s["doc"]["models"]:
            pb = m["package_bytes"]
            pm = m.get("peak_memory_bytes")
            row = {"task": s["task"], "source": s["path"], "dataset": ds.get("source", ""), "model": m["model"],
                   "config": m["config"]}
            for n in metric_cols:
                v = m.get(n)
                row[f"{n}_mean"] = v["mean"] if is_metric(v) else None
                row[f"{n}_std"] = v["std"] if is_metric(v) else None
                row[f"{n}_n"] = len(v["values"]) if is_metric(v) else None
            row.update({
                "macs": m["macs"], "macs_pct_resnet18": pct(m["macs"], base["macs"] if base else None),
                "learnable_params": m["learnable_params"],
                "learnable_pct_resnet18": pct(m["learnable_params"], base["learnable_params"] if base else None),
                "seeded_weights": m.get("seeded_weights"), "bn_state": m.get("bn_state")})
            for p in PRECISIONS:
                row[f"package_bytes_{p}"] = pb.get(p)
                row[f"package_{p}_pct_resnet18_f32"] = pct(pb.get(p), bf32)
            row["device_storage_bytes"] = m.get("device_storage_bytes")
            if isinstance(pm, dict):
                row["peak_memory_inference_bytes"] = pm.get("inference_tensors")
                row["peak_memory_train_bytes"] = pm.get("train_tensors")
            else:
                row["peak_memory_inference_bytes"] = pm if is_num(pm) else None
                row["peak_memory_train_bytes"] = None
            row["latency_batch1_ms"] = m.get("latency_batch1_ms")
            tp = m.get("throughput_images_per_s", {})
            for b in sorted(batches):
                row[f"throughput_b{b}_images_per_s"] = tp.get(str(b))
            for k, v in flat_scalars(m, known | set(metric_names(m))).items():
                if k not in extra_cols:
                    extra_cols.append(k)
                row[k] = v
            rows.append(row)
    cols = []
    for r in rows:
        for k in r:
            if k not in cols and k not in extra_cols:
                cols.append(k)
    return rows, cols + extra_cols


def per_class_rows(suites):
    rows = []
    for s in suites:
        for m in s["doc"]["models"]:
            for k, v in m.items():
                if not is_per_class(v):
                    continue
                for e in v:
                    val = e["value"]
                    mean, std = (val.get("mean"), val.get("std")) if isinstance(val, dict) else (val, None)
                    rows.append({"task": s["task"], "source": s["path"], "model": m["model"], "metric": k,
                                 "class": e["class"], "value": mean, "std": std})
    return rows


def run_rows(suites):
    rows, fields = [], []
    for s in suites:
        for m in s["doc"]["models"]:
            for r in m.get("runs", []) or []:
                if not isinstance(r, dict):
                    continue
                for ep in r.get("epochs", []) or []:
                    if not isinstance(ep, dict):
                        continue
                    row = {"task": s["task"], "source": s["path"], "model": m["model"], "seed": r.get("seed"),
                           "config": r.get("config", m["config"])}
                    for k, v in ep.items():
                        if is_num(v) or isinstance(v, str):
                            if k not in fields:
                                fields.append(k)
                            row[k] = v
                    rows.append(row)
    first = ["epoch"] if "epoch" in fields else []
    return rows, ["task", "source", "model", "seed", "config"] + first + [f for f in fields if f != "epoch"]


def shape_str(v):
    return "x".join(str(x) for x in v) if isinstance(v, list) else ("" if v is None else str(v))


def layer_group(name):
    return name.split(".")[0] if name else ""


def layer_rows(layer_docs):
    rows, models = [], []
    for ld in layer_docs:
        for m in ld["doc"]["models"]:
            layers = m.get("layers") or []
            if not layers:
                continue
            models.append({"model": m["model"], "config": m.get("config", ""), "input": shape_str(m.get("input")),
                           "layers": layers, "totals": m.get("totals", {}), "source": ld["path"]})
            for layer in layers:
                rows.append({"source": ld["path"], "model": m["model"], "config": m.get("config", ""),
                             "input": shape_str(m.get("input")), "layer": layer["name"],
                             "group": layer_group(layer["name"]), "type": layer["type"],
                             "in": shape_str(layer.get("in")), "out": shape_str(layer.get("out")),
                             "learnable": layer["learnable"], "seeded": layer.get("seeded"),
                             "state": layer.get("state"), "macs": layer["macs"],
                             "pool_reads": layer.get("pool_reads"), "act_bytes": layer.get("act_bytes")})
    return rows, models


def bench_rows(benches):
    rows, counters = [], []
    for bd in benches:
        ctx = bd["doc"]["context"]
        for b in bd["doc"]["benchmarks"]:
            run_name = b.get("run_name", b["name"])
            parts = run_name.split("/")
            if parts and parts[-1] == "real_time":
                parts = parts[:-1]
            mm = MODEL_BENCH_RE.match(run_name)
            row = {"source": bd["path"], "executable": ctx.get("executable", ""), "name": b["name"],
                   "family": parts[0], "model": mm.group(2) if mm else "",
                   "impl": "" if mm else (parts[1] if len(parts) > 1 else ""),
                   "batch": int(mm.group(3)) if mm else (b.get("batch") if is_num(b.get("batch")) else None),
                   "input": mm.group(4) if mm else "",
                   "run_type": b.get("run_type", "iteration"), "aggregate": b.get("aggregate_name", ""),
                   "error": b.get("error_message", "") if b.get("error_occurred") else "",
                   "iterations": b.get("iterations"), "label": b.get("label", "")}
            if not row["error"]:
                row["real_time_ms"] = b["real_time"] * TIME_TO_MS[b["time_unit"]]
                row["cpu_time_ms"] = b["cpu_time"] * TIME_TO_MS[b["time_unit"]] if is_num(b.get("cpu_time")) else None
                ips = b.get("items_per_second")
                if not is_num(ips) and mm and row["run_type"] != "aggregate" and row["real_time_ms"] > 0:
                    ips = row["batch"] / (row["real_time_ms"] / 1e3)
                row["items_per_second"] = ips
                row["bytes_per_second"] = b.get("bytes_per_second")
            for k, v in b.items():
                if k not in GBENCH_STD_KEYS and is_num(v) and k not in row:  # the name's N= wins over a counter
                    if k not in counters:
                        counters.append(k)
                    row[k] = v
            rows.append(row)
    cols = ["source", "executable", "name", "family", "model", "impl", "batch", "input", "run_type", "aggregate",
            "iterations", "real_time_ms", "cpu_time_ms", "items_per_second", "bytes_per_second"]
    cols += [c for c in counters if c not in cols] + ["label", "error"]
    return rows, cols


def bench_points(rows):
    """One timing per benchmark: the median aggregate when repetitions were run, else the single iteration row."""
    by = {}
    for r in rows:
        if r["error"]:
            continue
        key = (r["source"], r["name"] if r["run_type"] != "aggregate" else r["name"][: -len(r["aggregate"]) - 1])
        rank = {"median": 0, "mean": 1}.get(r["aggregate"], 2 if r["run_type"] != "aggregate" else 9)
        if rank == 9:
            continue
        if key not in by or rank < by[key][0]:
            by[key] = (rank, r)
    return [r for _, r in by.values()]


# ----------------------------------------------------------------------------------------------- formatting
def fmt_si(v, unit="", digits=3):
    if not is_num(v):
        return "–"
    a = abs(v)
    for scale, pre in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= scale:
            return f"{v / scale:.{digits}g} {pre}{unit}".strip()
    return f"{v:.{digits}g} {unit}".strip()


def fmt_bytes(v):
    if not is_num(v):
        return "–"
    for scale, pre in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if abs(v) >= scale:
            return f"{v / scale:.2f} {pre}"
    return f"{int(v)} B"


def fmt_pct(v):
    return "–" if v is None else (f"{v:.1f}%" if v >= 1 else f"{v:.2f}%")


def fmt_metric(mean, std, n=None):
    if mean is None:
        return "–"
    pm = f" ± {std:.4f}" if std is not None and (n is None or n > 1) else ""
    return f"{mean:.4f}{pm}"


def fmt_cell(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ""
    return str(v)


# ----------------------------------------------------------------------------------------------- writing
class Writer:
    def __init__(self, out):
        self.out = out
        self.written = []
        os.makedirs(out, exist_ok=True)

    def path(self, name):
        return os.path.join(self.out, name)

    def _tmp(self, name):
        return os.path.join(self.out, f".{name}.tmp{os.getpid()}")

    def _commit(self, tmp, name):
        # As the C++ writer (write_file_atomic): per-process temp, fsync, rename, directory fsync.
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path(name))
        try:
            dfd = os.open(self.out, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass  # some file systems refuse fsync on a directory
        self.written.append(self.path(name))

    def text(self, name, text):
        tmp = self._tmp(name)
        with open(tmp, "w", encoding="utf-8", errors="replace", newline="") as f:
            f.write(text)
        self._commit(tmp, name)

    def csv(self, name, cols, rows):
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for r in rows:
            w.writerow([fmt_cell(r.get(c)) for c in cols])
        self.text(name, buf.getvalue())

    def figure(self, name, fig):
        for ext, meta in (("png", {"Software": None}), ("svg", {"Date": None})):
            tmp = self._tmp(f"{name}.{ext}")
            fig.savefig(tmp, format=ext, dpi=150, metadata=meta, bbox_inches="tight")
            self._commit(tmp, f"{name}.{ext}")


# ----------------------------------------------------------------------------------------------- plots
class Plotter:
    def __init__(self, plt, np, model_names):
        self.plt, self.np = plt, np
        names = sorted(set(model_names), key=lambda n: (n != BASELINE, model_names.index(n)))
        palette = list(plt.get_cmap("tab10").colors)
        palette = palette[:7] + palette[8:]  # grey (index 7) is kept for "other"
        extra = list(plt.get_cmap("Dark2").colors)
        self.colours = {}
        for i, n in enumerate(names):
            self.colours[n] = (palette + extra)[i % (len(palette) + len(extra))]

    def colour(self, name):
        if name in self.colours:
            return self.colours[name]
        base = name.split(" (")[0]
        return self.colours.get(base, (0.5, 0.5, 0.5))

    def new(self, w, h, ncols=1, nrows=1, **kw):
        fig, axes = self.plt.subplots(nrows, ncols, figsize=(w, h), squeeze=False, **kw)
        return fig, axes

    @staticmethod
    def style(ax):
        ax.grid(True, which="major", alpha=0.35)
        ax.grid(True, which="minor", alpha=0.12)
        ax.spines["top"].set_visible(False)
        ax.spines["right"].set_visible(False)

    def title(self, fig, title, subtitle, bottom=0.0):
        """Title and a grey subtitle (the data's source) at fixed distances in inches from the top, then lays
        the axes out below them."""
        h = fig.get_figheight()
        # layout first: tight_layout would otherwise reserve the suptitle's room a second time
        fig.tight_layout(rect=(0, bottom, 1, 1 - 0.68 / h))
        fig.text(0.5, 1 - 0.1 / h, title, ha="center", va="top", fontsize=13, fontweight="bold")
        if subtitle:
            fig.text(0.5, 1 - 0.4 / h, subtitle, ha="center", va="top", fontsize=8.5, color="0.35")

    def log_x(self, ax, xs):
        """Log x axis over the data with room on the right for the labels; ticks at 1, 2, 5 x 10^k as plain
        numbers (a reader wants "5 MB", not "5x10^0")."""
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
        ax.set_xscale("log")
        if xs:
            lo, hi = min(xs), max(xs)
            ax.set_xlim(lo / 1.35, hi * (1.35 if hi / lo > 30 else 1.6) * 1.25)
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())

    @staticmethod
    def y_range(ax, ys):
        """At least 0.05 of y span for scores in [0, 1]: a 0.001 difference between two precisions must not
        fill the whole plot."""
        if not ys:
            return
        lo, hi = min(ys), max(ys)
        span = max(hi - lo, 0.05 if hi <= 1.0 else 0.0)
        mid = (lo + hi) / 2
        lo, hi = mid - span * 0.6, mid + span * 0.6
        if hi <= 1.0 + 1e-9:
            lo = max(lo, 0.0)
        ax.set_ylim(lo, hi + 0.08 * span)

    def label_points(self, ax, pts):
        """Model names next to their points, nudged apart vertically when two would overlap."""
        if not pts:
            return
        fig = ax.figure
        fig.canvas.draw()
        trans = ax.transData
        placed = []
        for x, y, text, colour in sorted(pts, key=lambda p: p[1]):
            px, py = trans.transform((x, y))
            dy = 0.0
            for (qx, qy) in placed:
                if abs(qx - px) < 140 and abs(qy - (py + dy)) < 14:
                    dy = qy - py + 14
            placed.append((px, py + dy))
            ax.annotate(text, (x, y), xytext=(7, 4 + dy * 72 / fig.dpi), textcoords="offset points", fontsize=8,
                        color=colour, fontweight="bold", va="bottom", ha="left")

    def accuracy_vs(self, w, suites, what):
        n = len(suites)
        ncols = min(n, 2)
        nrows = (n + ncols - 1) // ncols
        fig, axes = self.new(6.6 * ncols + 1.6, 4.6 * nrows + 0.6, ncols, nrows)
        seen_models, labels = [], []
        for i, s in enumerate(suites):
            ax = axes[i // ncols][i % ncols]
            main = MAIN_METRIC[s["task"]]
            pts, xs_all, ys_all = [], [], []
            for m in s["doc"]["models"]:
                c = self.colour(m["model"])
                if m["model"] not in seen_models:
                    seen_models.append(m["model"])
                if what == "bytes":
                    xs, ys, es, ps = [], [], [], []
                    for p in PRECISIONS:
                        v = precision_metric(m, s["task"], p)
                        b = m["package_bytes"].get(p)
                        if v is None or not is_num(b):
                            continue
                        xs.append(b / 1e6)
                        ys.append(v[0])
                        es.append(v[1])
                        ps.append(p)
                    if not xs:
                        continue
                    xs_all += xs
                    ys_all += [y - e for y, e in zip(ys, es)] + [y + e for y, e in zip(ys, es)]
                    ax.plot(xs, ys, "-", color=c, lw=1.4, alpha=0.7, zorder=2)
                    for x, y, e, p in zip(xs, ys, es, ps):
                        ax.errorbar([x], [y], yerr=[e], fmt=PREC_MARKER[p], color=c, ms=7, mec="white", mew=0.8,
                                    capsize=3, zorder=3)
                    pts.append((xs[0], ys[0], m["model"], c))
                else:
                    v = precision_metric(m, s["task"], "f32")
                    ax.errorbar([m["macs"] / 1e6], [v[0]], yerr=[v[1]], fmt="o", color=c, ms=8, mec="white",
                                mew=0.8, capsize=3, zorder=3)
                    pts.append((m["macs"] / 1e6, v[0], m["model"], c))
                    xs_all.append(m["macs"] / 1e6)
                    ys_all += [v[0] - v[1], v[0] + v[1]]
            self.style(ax)
            if what == "bytes":
                ax.set_xlabel("transmitted package size (MB = 10⁶ bytes, log scale)")
            else:
                ax.set_xlabel("compute per image (MMACs, log scale)")
            ax.set_ylabel(f"{METRIC_LABEL.get(main, main)} (test split; ± std over seeds)")
            ds = s["doc"].get("dataset", {})
            if n > 1:
                ax.set_title(f"{s['task']}: {ds.get('source', s['path'])}", fontsize=9)
            self.log_x(ax, xs_all)
            self.y_range(ax, ys_all)
            labels.append((ax, pts))
        for j in range(n, nrows * ncols):
            axes[j // ncols][j % ncols].set_visible(False)
        from matplotlib.lines import Line2D
        handles = [Line2D([], [], color=self.colour(mn), marker="o", ls="-", label=mn) for mn in seen_models]
        if what == "bytes":
            handles += [Line2D([], [], color="0.3", marker=PREC_MARKER[p], ls="none", label=f"package {p}")
                        for p in PRECISIONS]
        fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=9)
        mains = sorted({METRIC_LABEL.get(MAIN_METRIC[s["task"]], MAIN_METRIC[s["task"]]) for s in suites})
        if what == "bytes":
            title = f"{' / '.join(mains)} vs transmitted package bytes (f32, f16, i8 packages)"
        else:
            title = f"{' / '.join(mains)} vs MACs per image"
        self.title(fig, title, subtitle_of(suites))
        for ax, pts in labels:
            self.label_points(ax, pts)
        w.figure(f"accuracy_vs_{what}", fig)
        self.plt.close(fig)

    def throughput(self, w, suites, bpoints):
        """One panel per suite (its inference throughput; batch 1 from its latency) and one per benchmark file
        (bench_models forward dash-dot, train step dashed), sharing the y axis so they compare."""
        panels = []
        for s in suites:
            lines = []
            for m in s["doc"]["models"]:
                tp = m.get("throughput_images_per_s", {})
                if not tp:
                    continue
                pts = sorted((int(b), v) for b, v in tp.items())
                if is_num(m.get("latency_batch1_ms")) and m["latency_batch1_ms"] > 0 and pts[0][0] != 1:
                    pts.insert(0, (1, 1e3 / m["latency_batch1_ms"]))
                lines.append((m["model"], "suite", pts))
            if lines:
                ds = s["doc"].get("dataset", {}).get("source", s["path"])
                panels.append((f"suite {s['task']}: {ds}", lines))
        by_src = {}
        for r in bpoints:
            mm = MODEL_BENCH_RE.match(r["name"])
            if not mm or not is_num(r.get("items_per_second")):
                continue
            key = (mm.group(1), r["model"], r["input"])
            by_src.setdefault(r["source"], {}).setdefault(key, []).append((r["batch"], r["items_per_second"]))
        for src, groups in by_src.items():
            exe = next((os.path.basename(r["executable"]) for r in bpoints if r["source"] == src and
                        r["executable"]), "")
            sizes = sorted({k[2] for k in groups})
            lines = [(model, fam, sorted(pts)) for (fam, model, _), pts in sorted(groups.items())]
            panels.append((f"{exe or 'benchmark'} ({os.path.basename(src)}), input {', '.join(sizes)}", lines))
        if not panels:
            return False
        n = len(panels)
        ncols = min(n, 2)
        nrows = (n + ncols - 1) // ncols
        fig, axes = self.new(6.2 * ncols + 2.2, 4.8 * nrows + 0.7, ncols, nrows, sharey=True)
        style = {"suite": ("-", "o", "suite inference (batch 1 = 1/latency)"),
                 "forward": ("-.", "s", "bench_models forward"), "train_step": ("--", "^", "bench_models train step")}
        models, used = [], []
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
        for i, (title, lines) in enumerate(panels):
            ax = axes[i // ncols][i % ncols]
            for model, kind, pts in lines:
                ls, mk, _ = style[kind]
                ax.plot([p[0] for p in pts], [p[1] for p in pts], ls=ls, marker=mk, color=self.colour(model),
                        lw=2 if kind == "suite" else 1.6, ms=6)
                if model not in models:
                    models.append(model)
                if kind not in used:
                    used.append(kind)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
            self.style(ax)
            ax.set_xlabel("batch size (images, log₂ scale)")
            if i % ncols == 0:
                ax.set_ylabel("throughput (images/s, log scale)")
            ax.set_title(title if len(title) < 90 else title[:87] + "...", fontsize=9)
        for j in range(n, nrows * ncols):
            axes[j // ncols][j % ncols].set_visible(False)
        from matplotlib.lines import Line2D
        handles = [Line2D([], [], color=self.colour(mn), lw=2.5, label=mn) for mn in models]
        handles.append(Line2D([], [], ls="none", label=" "))
        for kind in ("suite", "forward", "train_step"):
            if kind in used:
                ls, mk, lab = style[kind]
                handles.append(Line2D([], [], color="0.3", ls=ls, marker=mk, label=lab))
        fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=9)
        self.title(fig, "Throughput vs batch size (images/s, higher is better)", subtitle_of(suites) or
                   "Google Benchmark: " + ", ".join(sorted(os.path.basename(x) for x in by_src)))
        w.figure("throughput_vs_batch", fig)
        self.plt.close(fig)
        return True

    def layer_costs(self, w, lmodels):
        np = self.np
        groups = []
        for lm in lmodels:
            for layer in lm["layers"]:
                g = layer_group(layer["name"])
                if g not in groups:
                    groups.append(g)
        order = {"stem": 0, "head": 99}
        groups.sort(key=lambda g: (order.get(g, 50), g))
        cmap = self.plt.get_cmap("viridis")
        gcol = {g: cmap(0.1 + 0.8 * i / max(1, len(groups) - 1)) for i, g in enumerate(groups)}
        panels = [("macs", "MACs per image (millions)", 1e6), ("pool_reads", "pooling window reads (millions)", 1e6),
                  ("learnable", "learnable parameters (millions)", 1e6)]
        if not any(layer.get("pool_reads") for lm in lmodels for layer in lm["layers"]):
            panels.pop(1)
        names = [f"{lm['model']}\n({lm['input'].split('x', 1)[-1] if lm['input'] else '?'})" for lm in lmodels]
        fig, axes = self.new(4.6 * len(panels) + 1.5, 0.75 * len(lmodels) + 2.4, len(panels), 1, sharey=True)
        y = np.arange(len(lmodels))[::-1]
        for pi, (field, label, scale) in enumerate(panels):
            ax = axes[0][pi]
            left = np.zeros(len(lmodels))
            for g in groups:
                vals = np.array([sum((layer.get(field) or 0) for layer in lm["layers"]
                                     if layer_group(layer["name"]) == g) for lm in lmodels], dtype=float) / scale
                ax.barh(y, vals, left=left, color=gcol[g], edgecolor="white", lw=0.6, height=0.62,
                        label=g if pi == 0 else None)
                left += vals
            xmax = left.max() if left.size else 1
            for yi, tot in zip(y, left):
                ax.text(tot + 0.01 * xmax, yi, f"{tot:,.0f}" if tot >= 1000 else f"{tot:.3g}", va="center",
                        fontsize=8)
            ax.set_xlim(0, xmax * 1.18 if xmax > 0 else 1)
            ax.set_xlabel(label)
            ax.grid(True, axis="x", alpha=0.35)
            ax.spines["top"].set_visible(False)
            ax.spines["right"].set_visible(False)
        axes[0][0].set_yticks(y)
        axes[0][0].set_yticklabels(names, fontsize=9)
        for tl, lm in zip(axes[0][0].get_yticklabels(), lmodels):
            tl.set_color(self.colour(lm["model"]))
        fig.legend(loc="lower center", ncol=len(groups), frameon=False, fontsize=9, bbox_to_anchor=(0.5, -0.01),
                   title="layer group")
        src = ", ".join(sorted({lm["source"] for lm in lmodels}))
        self.title(fig, "Per-layer cost by layer group (one image)", f"from reframe models --layers: {src}",
                   bottom=0.75 / fig.get_figheight())
        w.figure("layer_costs", fig)
        self.plt.close(fig)

    def per_class(self, w, name, rows, source, metric):
        np = self.np
        classes, models = [], []
        for r in rows:
            if r["class"] not in classes:
                classes.append(r["class"])
            if r["model"] not in models:
                models.append(r["model"])
        val = {(r["model"], r["class"]): (r["value"], r["std"]) for r in rows}
        width = 0.8 / len(models)
        fig, axes = self.new(max(7.0, 0.55 * len(classes) * max(1, len(models)) ** 0.5 + 3), 4.6)
        ax = axes[0][0]
        x = np.arange(len(classes))
        for i, mn in enumerate(models):
            vs = [val.get((mn, c), (None, None)) for c in classes]
            ys = [v[0] if is_num(v[0]) else np.nan for v in vs]
            es = [v[1] if is_num(v[1]) else 0.0 for v in vs]
            ax.bar(x - 0.4 + width * (i + 0.5), ys, width, yerr=es if any(es) else None, color=self.colour(mn),
                   label=mn, capsize=2, edgecolor="white", lw=0.5)
        ax.set_xticks(x)
        ax.set_xticklabels(classes, rotation=35 if len(classes) > 6 else 0, ha="right" if len(classes) > 6
                           else "center", fontsize=9)
        pretty = {"ap50_per_class": "AP@0.5", "iou_per_class": "IoU"}.get(metric, metric.replace("_per_class", ""))
        ax.set_ylabel(pretty + " (test split" + (", ± std over seeds)" if any(
            is_num(r["std"]) for r in rows) else ")"))
        ax.grid(True, axis="y", alpha=0.35)
        ax.spines["top"].set_visible(False)
        ax.spines["right"].set_visible(False)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=9)
        self.title(fig, f"Per-class {pretty} by model ({metric})", source)
        w.figure(name, fig)
        self.plt.close(fig)


def subtitle_of(suites):
    out = []
    for s in suites:
        d = s["doc"].get("dataset", {})
        p = s["doc"].get("provenance", {})
        txt = f"{s['task']}: {d.get('source', '?')}"
        if p.get("git_revision"):
            txt += f" @ {str(p['git_revision'])[:10]}"
        if txt not in out:
            out.append(txt)
    text = "; ".join(out)
    return text if len(text) < 160 else text[:157] + "..."


def make_plots(w, suites, lmodels, bpoints, pc_rows):
    """The PNG/SVG figures; returns a list of (caption, basename) for the summary, or None without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np
    except ImportError as e:
        warn(f"matplotlib/numpy not available ({e}); plots skipped. Install python3-matplotlib "
             "(Debian/Ubuntu) or `pip install matplotlib` to get them.")
        return None
    plt.rcParams.update({"svg.hashsalt": "reframe", "font.size": 10, "axes.titlesize": 10,
                         "axes.labelsize": 10, "figure.dpi": 100})
    names = []
    for s in suites:
        names += [m["model"] for m in s["doc"]["models"]]
    names += [lm["model"] for lm in lmodels] + [r["model"] for r in bpoints if r["model"]]
    pl = Plotter(plt, np, names)
    figs = []
    scored = [s for s in suites if s["task"] in MAIN_METRIC]
    if scored:
        pl.accuracy_vs(w, scored, "bytes")
        figs.append(("Main metric vs transmitted package bytes", "accuracy_vs_bytes"))
        pl.accuracy_vs(w, scored, "macs")
        figs.append(("Main metric vs MACs per image", "accuracy_vs_macs"))
    if pl.throughput(w, suites, bpoints):
        figs.append(("Throughput vs batch size", "throughput_vs_batch"))
    if lmodels:
        pl.layer_costs(w, lmodels)
        figs.append(("Per-layer costs by layer group", "layer_costs"))
    for key, rows in per_class_groups(pc_rows):
        fname = re.sub(r"[^A-Za-z0-9_.-]+", "_", key[2] if key[3] == 0 else f"{key[2]}_{key[3]}")
        suite = next(s for s in suites if s["path"] == key[1])
        ds = suite["doc"].get("dataset", {}).get("source", "")
        pl.per_class(w, fname, rows, f"{key[0]}: {ds} ({key[1]})" if ds else f"{key[0]}: {key[1]}", key[2])
        figs.append((f"Per-class {key[2]} ({key[0]})", fname))
    return figs


def per_class_groups(pc_rows):
    """(task, source, metric, index) -> rows; index disambiguates the same metric from several suite files."""
    out, count = {}, {}
    for r in pc_rows:
        k = (r["task"], r["source"], r["metric"])
        out.setdefault(k, []).append(r)
    res = []
    for (task, src, metric), rows in out.items():
        i = count.get(metric, 0)
        count[metric] = i + 1
        res.append(((task, src, metric, i), rows))
    return res


# ----------------------------------------------------------------------------------------------- summary
class Doc:
    """Blocks rendered both as Markdown and as HTML, so the two summaries always say the same thing."""

    def __init__(self):
        self.blocks = []

    def h(self, level, text):
        self.blocks.append(("h", level, text))

    def p(self, text):
        self.blocks.append(("p", text))

    def kv(self, items):
        self.blocks.append(("kv", [(k, v) for k, v in items if v not in (None, "")]))

    def table(self, head, rows, align=None):
        self.blocks.append(("table", head, rows, align or ["l"] + ["r"] * (len(head) - 1)))

    def img(self, caption, base):
        self.blocks.append(("img", caption, base))

    def markdown(self):
        out = []
        esc = lambda s: str(s).replace("|", "\\|")
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2] + "\n")
            elif b[0] == "p":
                out.append(b[1] + "\n")
            elif b[0] == "kv":
                out.append("\n".join(f"- **{k}**: {v}" for k, v in b[1]) + "\n")
            elif b[0] == "table":
                _, head, rows, align = b
                out.append("| " + " | ".join(esc(x) for x in head) + " |")
                out.append("|" + "|".join("---:" if a == "r" else ":---" for a in align) + "|")
                out += ["| " + " | ".join(esc(x) for x in r) + " |" for r in rows]
                out.append("")
            elif b[0] == "img":
                out.append(f"![{b[1]}]({b[2]}.png)\n")
        return "\n".join(out)

    def html(self, title):
        e = html.escape
        css = ("body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;margin:2em auto;"
               "padding:0 1em;color:#222;line-height:1.45}h1{border-bottom:2px solid #ddd;padding-bottom:.3em}"
               "h2{margin-top:1.8em;border-bottom:1px solid #eee}table{border-collapse:collapse;margin:.8em 0;"
               "font-size:.88em}th,td{border:1px solid #ddd;padding:.3em .6em}th{background:#f4f5f7}"
               "tr:nth-child(even) td{background:#fafbfc}td.r{text-align:right;font-variant-numeric:tabular-nums}"
               "figure{margin:1.2em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}"
               "figcaption{color:#666;font-size:.9em}ul.kv{list-style:none;padding-left:0}ul.kv li{margin:.15em 0}"
               "code{background:#f4f5f7;padding:0 .25em}")
        out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
               f"<title>{e(title)}</title>", f"<style>{css}</style></head><body>"]
        for b in self.blocks:
            if b[0] == "h":
                out.append(f"<h{b[1]}>{e(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                out.append(f"<p>{e(b[1])}</p>")
            elif b[0] == "kv":
                out.append('<ul class="kv">' + "".join(f"<li><b>{e(k)}</b>: {e(str(v))}</li>" for k, v in b[1])
                           + "</ul>")
            elif b[0] == "table":
                _, head, rows, align = b
                out.append("<table><thead><tr>" + "".join(f"<th>{e(str(x))}</th>" for x in head) + "</tr></thead>")
                out.append("<tbody>" + "".join(
                    "<tr>" + "".join(f'<td class="{a}">{e(str(x))}</td>' for x, a in zip(r, align)) + "</tr>"
                    for r in rows) + "</tbody></table>")
            elif b[0] == "img":
                out.append(f'<figure><img src="{e(b[2])}.svg" alt="{e(b[1])}">'
                           f"<figcaption>{e(b[1])} (<a href=\"{e(b[2])}.png\">PNG</a>)</figcaption></figure>")
        out.append("</body></html>\n")
        return "\n".join(out)


def metric_label(n):
    for p, sufs in PREC_SUFFIX.items():
        for suf in sufs:
            if n.endswith(suf) and n[: -len(suf)] in METRIC_LABEL:
                return f"{METRIC_LABEL[n[: -len(suf)]]}, {p} package"
    return METRIC_LABEL.get(n, n)


def quality_metrics(suite):
    names = []
    for m in suite["doc"]["models"]:
        for n in metric_names(m):
            if n not in names and n not in TIMING_METRICS and n != "val_acc":
                names.append(n)
    main = MAIN_METRIC.get(suite["task"])
    names.sort(key=lambda n: (n != main, not n.startswith(main or "\0"), n))
    return names


def summary(args_cmd, suites, mrows, pc_rows, lmodels, bpoints, figs, files):
    d = Doc()
    title = "reframe-bench report"
    d.h(1, title)
    d.kv([("generated", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")),
          ("command", args_cmd), ("inputs", ", ".join(files))])
    for s in suites:
        doc = s["doc"]
        prov, budget, ds = doc.get("provenance", {}), doc.get("budget", {}), doc.get("dataset", {})
        d.h(2, f"{s['task']}: {ds.get('source', s['path'])}")
        d.kv([("file", s["path"]), ("schema", doc.get("schema")),
              ("git revision", prov.get("git_revision")), ("build", " ".join(
                  str(x) for x in (prov.get("build"), prov.get("compiler")) if x)),
              ("CPU", f"{prov.get('cpu', '?')}, {prov.get('threads', '?')} threads" if prov.get("cpu") else None),
              ("GPU", prov.get("cuda_device")), ("date", prov.get("written_utc")),
              ("command", prov.get("command")),
              ("wall time", f"{doc['wall_seconds']:.0f} s" if is_num(doc.get("wall_seconds")) else None),
              ("max RSS", fmt_bytes(doc.get("max_rss_bytes")) if is_num(doc.get("max_rss_bytes")) else None)])
        if budget:
            d.p("Budget: " + ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                       for k, v in budget.items()))
        if ds:
            parts = [f"source {ds.get('source')}"]
            for k in ("train", "val", "test"):
                if k in ds:
                    parts.append(f"{k} {ds[k]}" + (f" ({ds[k + '_hash']})" if ds.get(k + "_hash") else ""))
            if ds.get("image"):
                parts.append("image " + shape_str(ds["image"]))
            if ds.get("classes"):
                parts.append(f"{len(ds['classes'])} classes")
            d.p("Dataset: " + ", ".join(parts))
        qm = quality_metrics(s)
        batches = sorted({int(b) for m in doc["models"] for b in m.get("throughput_images_per_s", {})})
        head = ["model"] + [metric_label(n) + " (mean ± std)" for n in qm] + [
            "MACs (% R18)", "learnable (% R18)", "seeded", "package f32 (% R18)", "f16", "i8", "storage",
            "peak mem infer / train", "latency b1 (ms)"] + [f"img/s b{b}" for b in batches] + [
            "regen (ms, warm median)"]
        rows = []
        for m, r in ((m, r) for m in doc["models"] for r in mrows
                     if r["source"] == s["path"] and r["model"] == m["model"] and r["config"] == m["config"]):
            cells = [m["model"]]
            for n in qm:
                v = m.get(n)
                cells.append(fmt_metric(v["mean"], v["std"], len(v["values"])) if is_metric(v) else "–")
            cells += [f"{fmt_si(m['macs'])} ({fmt_pct(r['macs_pct_resnet18'])})",
                      f"{fmt_si(m['learnable_params'])} ({fmt_pct(r['learnable_pct_resnet18'])})",
                      fmt_si(m.get("seeded_weights"))]
            for p in PRECISIONS:
                b = r[f"package_bytes_{p}"]
                cells.append(f"{fmt_bytes(b)} ({fmt_pct(r[f'package_{p}_pct_resnet18_f32'])})" if p == "f32"
                             else f"{fmt_bytes(b)} ({fmt_pct(r[f'package_{p}_pct_resnet18_f32'])})")
            cells += [fmt_bytes(m.get("device_storage_bytes")),
                      f"{fmt_bytes(r['peak_memory_inference_bytes'])} / {fmt_bytes(r['peak_memory_train_bytes'])}",
                      f"{m['latency_batch1_ms']:.2f}" if is_num(m.get("latency_batch1_ms")) else "–"]
            tp = m.get("throughput_images_per_s", {})
            cells += [f"{tp[str(b)]:.1f}" if is_num(tp.get(str(b))) else "–" for b in batches]
            rg = m.get("regen_seconds_median")
            if is_metric(rg):
                cells.append(f"{rg['mean'] * 1e3:.3g}")
            elif is_metric(m.get("regen_seconds")):  # older results: one cold call, not comparable
                cells.append(f"{m['regen_seconds']['mean'] * 1e3:.3g} (single cold call)")
            else:
                cells.append("–")
            rows.append(cells)
        d.table(head, rows)
        has_base = baseline_of(s) is not None
        d.p(("% R18: relative to resnet18 in the same run (package sizes relative to its f32 package). "
             if has_base else "% R18: no resnet18 in this run, so no reference: shown as –. ") +
            "Quality figures are the packaged model's on the test split (touched once per package, after the last "
            "epoch); ± is the sample std over seeds, absent with one seed. regen: regenerating the seeded weights "
            "of the loaded f32 package, median of several warm calls.")
        for (task, src, metric, _), prow in per_class_groups([r for r in pc_rows if r["source"] == s["path"]]):
            d.h(3, f"Per-class {metric}")
            models = list(dict.fromkeys(r["model"] for r in prow))
            classes = list(dict.fromkeys(r["class"] for r in prow))
            val = {(r["model"], r["class"]): r for r in prow}
            trows = []
            for c in classes:
                cells = [str(c)]
                for mn in models:
                    r = val.get((mn, c))
                    cells.append(fmt_metric(r["value"], r["std"]) if r and is_num(r["value"]) else "–")
                trows.append(cells)
            d.table(["class"] + models, trows)
    if lmodels:
        d.h(2, "Model accounting (reframe models --layers)")
        head = ["model", "input", "layers", "MACs", "pool window reads", "learnable", "seeded", "BN state",
                "activation bytes"]
        rows = []
        for lm in lmodels:
            L = lm["layers"]
            rows.append([lm["model"], lm["input"], str(len(L)), fmt_si(sum(x["macs"] for x in L)),
                         fmt_si(sum(x.get("pool_reads") or 0 for x in L)), fmt_si(sum(x["learnable"] for x in L)),
                         fmt_si(sum(x.get("seeded") or 0 for x in L)), fmt_si(sum(x.get("state") or 0 for x in L)),
                         fmt_bytes(sum(x.get("act_bytes") or 0 for x in L))])
        d.table(head, rows)
        d.p("Per-layer rows are in layers.csv.")
    model_b = [r for r in bpoints if r["model"]]
    kern_b = [r for r in bpoints if not r["model"]]
    if model_b or kern_b:
        d.h(2, "Benchmarks (Google Benchmark)")
        ctxs = {r["source"] for r in bpoints}
        d.p("Sources: " + ", ".join(sorted(ctxs)) + ". One value per benchmark: the median over repetitions "
            "when they were run.")
    if model_b:
        ref = {(r["family"], r["batch"], r["input"], r["source"]): r["items_per_second"]
               for r in model_b if r["model"] == BASELINE}
        rows = []
        for r in sorted(model_b, key=lambda r: (r["family"], r["input"], r["batch"] or 0, r["model"] != BASELINE,
                                                r["model"])):
            base = ref.get((r["family"], r["batch"], r["input"], r["source"]))
            ips = r.get("items_per_second")
            rows.append([r["family"].replace("BM_", ""), r["model"], str(r["batch"]), r["input"],
                         f"{r['real_time_ms']:.3f}", f"{ips:.1f}" if is_num(ips) else "–",
                         f"{ips / base:.2f}x" if is_num(ips) and is_num(base) and base else "–"])
        d.table(["benchmark", "model", "batch", "input", "time (ms)", "images/s", "vs resnet18"], rows,
                ["l", "l", "r", "r", "r", "r", "r"])
    if kern_b:
        counters = []
        for r in kern_b:
            for k in r:
                if k not in BENCH_BASE_COLS and is_num(r[k]) and k not in counters:
                    counters.append(k)
        rows = []
        for r in sorted(kern_b, key=lambda r: r["name"]):
            rows.append([r["name"].replace("/real_time", ""), f"{r['real_time_ms']:.3f}"]
                        + [fmt_si(r.get("items_per_second"), "/s"), fmt_si(r.get("bytes_per_second"), "B/s")]
                        + [fmt_si(r.get(c)) for c in counters])
        d.table(["kernel benchmark", "time (ms)", "items/s", "bytes/s"] + counters, rows)
    if figs:
        d.h(2, "Plots")
        for cap, base in figs:
            d.img(cap, base)
    elif figs is None:
        d.p("Plots were skipped: matplotlib is not installed (install python3-matplotlib).")
    d.h(2, "Files")
    d.p("CSV tables next to this summary: models.csv, layers.csv, benchmarks.csv, runs.csv, metrics_per_class.csv "
        "(each written when its input was given).")
    return d, title


BENCH_BASE_COLS = {"source", "executable", "name", "family", "model", "impl", "batch", "input", "run_type",
                   "aggregate", "iterations", "real_time_ms", "cpu_time_ms", "items_per_second", "bytes_per_second",
                   "label", "error"}


# ----------------------------------------------------------------------------------------------- main
def main(argv):
    ap = argparse.ArgumentParser(prog="reframe report", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output folder (created)")
    ap.add_argument("inputs", nargs="+", help="result JSON files or folders of them")
    args = ap.parse_args(argv)
    try:
        suites, layer_docs, benches = load_inputs(args.inputs)
    except InputError as e:
        print(f"report: error: {e}", file=sys.stderr)
        return 2
    if not (suites or layer_docs or benches):
        print("report: error: no usable input (expected reframe.classify/detect/segment results, "
              "`reframe models --json --layers` output or Google Benchmark JSON)", file=sys.stderr)
        return 2
    try:
        w = Writer(args.out)
    except OSError as e:
        print(f"report: error: cannot create output folder {args.out}: {e}", file=sys.stderr)
        return 2
    mrows, mcols = suite_model_rows(suites)
    pc_rows = per_class_rows(suites)
    rrows, rcols = run_rows(suites)
    lrows, lmodels = layer_rows(layer_docs)
    brows, bcols = bench_rows(benches)
    bpoints = bench_points(brows)
    if suites:
        w.csv("models.csv", mcols, mrows)
    if pc_rows:
        w.csv("metrics_per_class.csv", ["task", "source", "model", "metric", "class", "value", "std"], pc_rows)
    if rrows:
        w.csv("runs.csv", rcols, rrows)
    if layer_docs:
        if not lrows:
            warn("models JSON has no per-layer rows (run `reframe models --json --layers`); layers.csv is empty")
        w.csv("layers.csv", ["source", "model", "config", "input", "layer", "group", "type", "in", "out",
                             "learnable", "seeded", "state", "macs", "pool_reads", "act_bytes"], lrows)
    if benches:
        w.csv("benchmarks.csv", bcols, brows)
    figs = make_plots(w, suites, lmodels, bpoints, pc_rows)
    cmd = " ".join([os.path.basename(sys.argv[0])] + list(argv))
    d, title = summary(cmd, suites, mrows, pc_rows, lmodels, bpoints, figs,
                       [s["path"] for s in suites] + [x["path"] for x in layer_docs] + [b["path"] for b in benches])
    w.text("summary.md", d.markdown())
    w.text("summary.html", d.html(title))
    for f in w.written:
        print(f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
