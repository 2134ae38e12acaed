"""Plots: the report's figures, each written as PNG and SVG by reframe_report.output.Writer.

make_plots draws accuracy_vs_bytes and accuracy_vs_macs (the headline metric of each suite against the
transmitted package size per precision and against MACs), throughput_vs_batch (suite throughput and
bench_models forward / train step), layer_costs (per-layer MACs, pool reads and parameters by layer group) and
one per-class bar chart per per-class metric; Plotter holds the shared colours (one per model, resnet18 first),
axes styling, titles and labels. matplotlib and numpy are imported only by make_plots, so the rest of the report
works without them. Checked by tests/report/test_report.sh (files exist, PNG signature, SVG parses).
"""
import os
import re

from .load import BASELINE, MAIN_METRIC, METRIC_LABEL, MODEL_BENCH_RE, PRECISIONS, is_num, unique, warn
from .peers import plot_peers
from .tables import layer_group, per_class_groups, precision_metric

PREC_MARKER = {"f32": "o", "f16": "s", "i8": "^"}


def clip(text, n):
    """text cut to fewer than n characters, with "..." where it was cut."""
    return text if len(text) < n else text[: n - 3] + "..."


def plain_numbers():
    """Tick labels as plain numbers: a reader wants "5 MB", not "5x10^0"."""
    from matplotlib.ticker import FuncFormatter
    return FuncFormatter(lambda v, _: f"{v:g}")


def log_ticks_125(axis):
    """Major ticks of a log axis at 1, 2, 5 x 10^k as plain numbers; no minor tick labels."""
    from matplotlib.ticker import LogLocator, NullFormatter
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(plain_numbers())
    axis.set_minor_formatter(NullFormatter())


class Plotter:
    """Figures drawn with matplotlib's pyplot (plt) and numpy (np), a fixed colour per model name."""

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

    def grid(self, n, w, h, **kw):
        """A figure for n panels, two per row; w and h are (inches per panel, inches added once) across and
        down. Returns the figure, its cells in reading order (those from n on are spare, to be hidden once the
        panels are drawn) and the number of columns."""
        ncols = min(n, 2)
        nrows = (n + ncols - 1) // ncols
        fig, axes = self.new(w[0] * ncols + w[1], h[0] * nrows + h[1], ncols, nrows, **kw)
        return fig, [axes[i // ncols][i % ncols] for i in range(nrows * ncols)], ncols

    @staticmethod
    def open_frame(ax):
        ax.spines["top"].set_visible(False)
        ax.spines["right"].set_visible(False)

    @staticmethod
    def style(ax):
        ax.grid(True, which="major", alpha=0.35)
        ax.grid(True, which="minor", alpha=0.12)
        Plotter.open_frame(ax)

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
        """Log x axis over the data with room on the right for the labels; ticks at 1, 2, 5 x 10^k."""
        ax.set_xscale("log")
        if xs:
            lo, hi = min(xs), max(xs)
            ax.set_xlim(lo / 1.35, hi * (1.35 if hi / lo > 30 else 1.6) * 1.25)
        log_ticks_125(ax.xaxis)

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
        fig, cells, ncols = self.grid(n, (6.6, 1.6), (4.6, 0.6))
        seen_models, labels = [], []
        for i, s in enumerate(suites):
            ax = cells[i]
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
        for ax in cells[n:]:
            ax.set_visible(False)
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
        fig, cells, ncols = self.grid(n, (6.2, 2.2), (4.8, 0.7), sharey=True)
        style = {"suite": ("-", "o", "suite inference (batch 1 = 1/latency)"),
                 "forward": ("-.", "s", "bench_models forward"), "train_step": ("--", "^", "bench_models train step")}
        models, used = [], []
        for i, (title, lines) in enumerate(panels):
            ax = cells[i]
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
            ax.xaxis.set_major_formatter(plain_numbers())
            log_ticks_125(ax.yaxis)
            self.style(ax)
            ax.set_xlabel("batch size (images, log₂ scale)")
            if i % ncols == 0:
                ax.set_ylabel("throughput (images/s, log scale)")
            ax.set_title(clip(title, 90), fontsize=9)
        for ax in cells[n:]:
            ax.set_visible(False)
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
        groups = unique(layer_group(layer["name"]) for lm in lmodels for layer in lm["layers"])
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
            self.open_frame(ax)
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
        classes, models = unique(r["class"] for r in rows), unique(r["model"] for r in rows)
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
        self.open_frame(ax)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=9)
        self.title(fig, f"Per-class {pretty} by model ({metric})", source)
        w.figure(name, fig)
        self.plt.close(fig)


def subtitle_of(suites):
    """The data's source under a figure's title: each suite's task, dataset and git revision."""
    out = []
    for s in suites:
        d = s["doc"].get("dataset", {})
        p = s["doc"].get("provenance", {})
        txt = f"{s['task']}: {d.get('source', '?')}"
        if p.get("git_revision"):
            txt += f" @ {str(p['git_revision'])[:10]}"
        if txt not in out:
            out.append(txt)
    return clip("; ".join(out), 160)


def make_plots(w, suites, lmodels, bpoints, pc_rows, prows=()):
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
    names += [r["engine"] for r in prows]  # peers: one colour per engine
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
    if prows and plot_peers(pl, w, prows):
        figs.append(("Engines on the same models (scripts/peers.py)", "peers_throughput"))
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
