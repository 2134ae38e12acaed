"""Peers: scripts/peers.py's JSON (schema reframe.peers/1: our engine, ONNX Runtime and PyTorch on the same
models, batches and threads) in the report: check_peers (the fields the rest relies on), peer_rows ->
peers.csv (one row per engine, model, threads and batch, with the ratio of our engine over it), plot_peers ->
peers_throughput.png/svg (one panel per model and thread count, throughput against batch size, one line per
engine) and peers_section (the ratio table of summary.md/html).
Checked by tests/report/test_peers.sh.
"""
import os

from .load import InputError, is_num, need

ENGINE = "reframe"  # our engine: the ratios are ours over each peer's
ENGINE_LABEL = {"reframe": "reframe (bench_models)", "onnxruntime": "ONNX Runtime", "pytorch": "PyTorch eager"}
ENGINE_STYLE = {"reframe": ("-", "o"), "onnxruntime": ("--", "s"), "pytorch": (":", "^")}


def check_peers(doc, path):
    results = need(doc, "results", list, path, "")
    if not results:
        raise InputError(f"{path}: field 'results' is empty")
    for i, r in enumerate(results):
        w = f"results[{i}]"
        need(r, "engine", str, path, w)
        need(r, "model", str, path, w)
        for k in ("threads", "batch", "images_per_s"):
            need(r, k, "number", path, w)
    need(doc, "input", str, path, "")


def peer_rows(peers):
    """peers.csv rows: every result with its source and our engine's images/s at the same point."""
    rows = []
    for p in peers:
        res = p["doc"]["results"]
        ours = {(r["model"], r["threads"], r["batch"]): r["images_per_s"] for r in res if r["engine"] == ENGINE}
        for r in sorted(res, key=lambda r: (r["model"], r["threads"], r["batch"], r["engine"] != ENGINE,
                                            r["engine"])):
            base = ours.get((r["model"], r["threads"], r["batch"]))
            rows.append({"source": p["path"], "model": r["model"], "input": p["doc"]["input"],
                         "threads": r["threads"], "batch": r["batch"], "engine": r["engine"],
                         "images_per_s": r["images_per_s"],
                         "reframe_over_engine": base / r["images_per_s"] if is_num(base) and r["images_per_s"]
                         else None,
                         "smoke": bool(p["doc"].get("smoke"))})
    return rows


PEER_COLS = ["source", "model", "input", "threads", "batch", "engine", "images_per_s", "reframe_over_engine",
             "smoke"]


def plot_peers(pl, w, rows):
    """One panel per (model, threads): images/s against batch size, one line per engine. Returns True if drawn."""
    panels = {}
    for r in rows:
        panels.setdefault((r["model"], r["threads"], r["input"]), {}).setdefault(r["engine"], []).append(
            (r["batch"], r["images_per_s"]))
    if not panels:
        return False
    keys = sorted(panels)
    fig, cells, ncols = pl.grid(len(keys), (5.2, 2.2), (4.0, 0.7))
    engines = []
    for i, key in enumerate(keys):
        ax = cells[i]
        for eng, pts in sorted(panels[key].items(), key=lambda kv: kv[0] != ENGINE):
            pts.sort()
            ls, mk = ENGINE_STYLE.get(eng, ("-.", "d"))
            ax.plot([p[0] for p in pts], [p[1] for p in pts], ls=ls, marker=mk, lw=2, ms=6,
                    color=pl.colour(eng), label=ENGINE_LABEL.get(eng, eng))
            if eng not in engines:
                engines.append(eng)
        if len({p[0] for pts in panels[key].values() for p in pts}) > 1:
            ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        pl.style(ax)
        ax.set_xlabel("batch size (images)")
        if i % ncols == 0:
            ax.set_ylabel("throughput (images/s, log scale)")
        ax.set_title(f"{key[0]}, {key[1]} thread{'s' if key[1] != 1 else ''}, input {key[2]}", fontsize=9)
    for ax in cells[len(keys):]:
        ax.set_visible(False)
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], color=pl.colour(e), ls=ENGINE_STYLE.get(e, ("-.", "d"))[0],
                      marker=ENGINE_STYLE.get(e, ("-.", "d"))[1], lw=2, label=ENGINE_LABEL.get(e, e))
               for e in engines]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=9)
    srcs = sorted({os.path.basename(r["source"]) for r in rows})
    smoke = any(r["smoke"] for r in rows)
    pl.title(fig, "Engines on the same models: throughput vs batch size (images/s, higher is better)",
             "scripts/peers.py: " + ", ".join(srcs) + (" (smoke run: not a measurement)" if smoke else ""))
    w.figure("peers_throughput", fig)
    pl.plt.close(fig)
    return True


def peers_section(d, peers, rows):
    """summary: per model, threads and batch, each engine's images/s and our engine over it."""
    if not rows:
        return
    d.h(2, "Peers: ONNX Runtime and PyTorch on the same models")
    for p in peers:
        doc = p["doc"]
        v = doc.get("versions", {})
        d.p(f"{p['path']}: input {doc['input']}, {doc.get('reps', '?')} interleaved repetitions (medians), "
            f"CPU {doc.get('machine', {}).get('cpu', '?')}; "
            + ", ".join(f"{k} {v[k]}" for k in sorted(v))
            + (". SMOKE RUN: tiny shapes and times, not a measurement." if doc.get("smoke") else "."))
        bad = [a for a in doc.get("agreement", []) if not a.get("ok")]
        if bad:
            d.p("Not timed (outputs disagree): " + ", ".join(f"{a['engine']} on {a['model']} "
                                                            f"({a['max_rel_diff']:.2g})" for a in bad))
    engines = [e for e in ("onnxruntime", "pytorch") if any(r["engine"] == e for r in rows)]
    engines += sorted({r["engine"] for r in rows} - set(engines) - {ENGINE})
    table = {}
    for r in rows:
        table.setdefault((r["model"], r["threads"], r["batch"]), {})[r["engine"]] = r["images_per_s"]
    out = []
    for (model, threads, batch), by in sorted(table.items()):
        ours = by.get(ENGINE)
        line = [model, str(threads), str(batch), f"{ours:.1f}" if is_num(ours) else "–"]
        for e in engines:
            v = by.get(e)
            line.append(f"{v:.1f}" if is_num(v) else "–")
            line.append(f"{ours / v:.2f}x" if is_num(v) and is_num(ours) and v else "–")
        out.append(line)
    head = ["model", "threads", "batch", "reframe images/s"]
    for e in engines:
        head += [f"{ENGINE_LABEL.get(e, e)} images/s", f"reframe / {ENGINE_LABEL.get(e, e)}"]
    d.table(head, out, ["l", "r", "r", "r"] + ["r"] * (2 * len(engines)))
