"""Summary: summary.md and summary.html, the report a reader opens first.

summary() builds a Doc (headings, paragraphs, key-value lists, tables, images) once and Doc renders it both as
Markdown and as self-contained HTML (the SVG plots by relative path, no external resource), so the two always
say the same thing: per suite its provenance, budget, dataset and a model table (metrics, accounting as % of
resnet18, throughput, regeneration time) and per-class tables; the model accounting of `reframe models
--layers`; the Google Benchmark timings; the plots. fmt_* spell numbers for people (SI prefixes, bytes, %).
Checked by tests/report/test_report.sh (table rows per model, provenance, plot links, no external resources).
"""
import datetime
import html

from .load import BASELINE, MAIN_METRIC, METRIC_LABEL, PRECISIONS, PREC_SUFFIX, is_metric, is_num, metric_names, \
    unique
from .peers import peers_section
from .tables import BENCH_FIXED_COLS, BENCH_TAIL_COLS, baseline_of, per_class_groups, shape_str

# Metrics that time the run rather than score the model: kept in CSV, left out of the quality columns.
# regen_seconds_median: warm (median of regen_reps calls); regen_cold_seconds: the single first call at load;
# regen_seconds: older results, a single cold call.
TIMING_METRICS = ("regen_seconds", "regen_seconds_median", "regen_cold_seconds", "train_seconds_per_epoch")


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


def summary(args_cmd, suites, mrows, pc_rows, lmodels, bpoints, figs, files, peers=(), prows=()):
    """The summary's Doc and title. mrows, pc_rows: models.csv and metrics_per_class.csv rows; lmodels: the
    per-model layer lists; bpoints: one row per benchmark; figs: (caption, basename) of the plots, or None when
    matplotlib is missing; files: the inputs read."""
    d = Doc()
    title = "reframe-bench report"
    d.h(1, title)
    d.kv([("generated", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")),
          ("command", args_cmd), ("inputs", ", ".join(files))])
    for s in suites:
        suite_section(d, s, mrows, pc_rows)
    if lmodels:
        accounting_section(d, lmodels)
    bench_section(d, bpoints)
    peers_section(d, peers, prows)
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


def suite_section(d, s, mrows, pc_rows):
    """One suite result file: where it came from, its model table and its per-class tables."""
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
    model_table(d, s, mrows)
    for (task, src, metric, _), prow in per_class_groups([r for r in pc_rows if r["source"] == s["path"]]):
        d.h(3, f"Per-class {metric}")
        models = unique(r["model"] for r in prow)
        classes = unique(r["class"] for r in prow)
        val = {(r["model"], r["class"]): r for r in prow}
        trows = []
        for c in classes:
            cells = [str(c)]
            for mn in models:
                r = val.get((mn, c))
                cells.append(fmt_metric(r["value"], r["std"]) if r and is_num(r["value"]) else "–")
            trows.append(cells)
        d.table(["class"] + models, trows)


def model_table(d, s, mrows):
    """A suite's models: quality metrics, accounting (% of resnet18 from its models.csv rows), speed."""
    doc = s["doc"]
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
        cells += [f"{fmt_bytes(r[f'package_bytes_{p}'])} ({fmt_pct(r[f'package_{p}_pct_resnet18_f32'])})"
                  for p in PRECISIONS]
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


def accounting_section(d, lmodels):
    """Per-model totals of `reframe models --layers` (the rows themselves are in layers.csv)."""
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


def bench_section(d, bpoints):
    """Google Benchmark timings: bench_models (per model, relative to resnet18) and kernel benchmarks."""
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
        base_cols = set(BENCH_FIXED_COLS + BENCH_TAIL_COLS)
        counters = []
        for r in kern_b:
            for k in r:
                if k not in base_cols and is_num(r[k]) and k not in counters:
                    counters.append(k)
        rows = []
        for r in sorted(kern_b, key=lambda r: r["name"]):
            rows.append([r["name"].replace("/real_time", ""), f"{r['real_time_ms']:.3f}"]
                        + [fmt_si(r.get("items_per_second"), "/s"), fmt_si(r.get("bytes_per_second"), "B/s")]
                        + [fmt_si(r.get(c)) for c in counters])
        d.table(["kernel benchmark", "time (ms)", "items/s", "bytes/s"] + counters, rows)
