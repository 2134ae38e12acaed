"""Tables: the rows of the CSV files `reframe report` writes, built from the loaded inputs (reframe_report.load).

suite_model_rows -> models.csv (one row per suite model: metrics, accounting, % of resnet18, throughput),
per_class_rows -> metrics_per_class.csv, run_rows -> runs.csv (per seed and epoch), layer_rows -> layers.csv
(and the per-model layer lists the plots and summary use), bench_rows -> benchmarks.csv, and bench_points (one
timing per benchmark) and per_class_groups for the plots and the summary. precision_metric reads a model's
headline metric for one package precision. Checked by tests/report/test_report.sh (CSV headers, rows, values).
"""
import math

from .load import BASELINE, MAIN_METRIC, MODEL_BENCH_RE, PRECISIONS, PREC_SUFFIX, TIME_TO_MS, is_metric, is_num, \
    is_per_class, metric_names

# Google Benchmark's own fields; any other number on a benchmark is a user counter (a column of its own).
GBENCH_STD_KEYS = {"name", "family_index", "per_family_instance_index", "run_name", "run_type", "repetitions",
                   "repetition_index", "threads", "iterations", "real_time", "cpu_time", "time_unit", "label",
                   "aggregate_name", "aggregate_unit", "error_occurred", "error_message", "items_per_second",
                   "bytes_per_second"}
# benchmarks.csv: these columns, then the counters, then BENCH_TAIL_COLS.
BENCH_FIXED_COLS = ["source", "executable", "name", "family", "model", "impl", "batch", "input", "run_type",
                    "aggregate", "iterations", "real_time_ms", "cpu_time_ms", "items_per_second", "bytes_per_second"]
BENCH_TAIL_COLS = ["label", "error"]


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
    cols = list(BENCH_FIXED_COLS)
    cols += [c for c in counters if c not in cols] + BENCH_TAIL_COLS
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

