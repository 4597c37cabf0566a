"""The plots of comparison.html, drawn from the config rows (rows.group_row) and embedded as base64 PNG.

matplotlib is imported when the first figure is drawn, not with this module: `peftlab compare --help` answers
without it (importing pyplot takes about a second)."""

from __future__ import annotations

import base64
import io
import json
import statistics
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from research.compare.columns import Hyper, format_value
from research.compare.records import is_number
from research.compare.rows import HIDDEN_MODEL, HIDDEN_ZERO_SHOT, lower_is_better

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

Row = dict[str, Any]


def pyplot() -> ModuleType:
    """matplotlib.pyplot on the Agg backend: files only, no display, no GUI toolkit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


def make_plots(groups: list[Row], metric: str, hypers: list[Hyper]) -> dict[str, str]:
    """Title -> base64 PNG, only for the plots the runs can fill."""
    rows = [r for r in groups if r[f"{metric} mean"] is not None]
    if not rows:
        return {}
    names = label_keys(hypers)
    figures = {}
    if counted := [r for r in rows if is_number(r["trainable"])]:
        figures["Metric vs trainable parameters"] = plot_tradeoff(counted, metric, names)
    figures |= hyper_plots(rows, metric, hypers)
    # Model size: methods run on several models (names or architectures), not LoRA's rank changing the total.
    sized = [r for r in rows if is_number(r["total_params"])]
    if sized := [r for r in sized if varies([s for s in sized if s["method"] == r["method"]], HIDDEN_MODEL)]:
        series = labeller(sized, names, with_model=False)  # one line per method (and rank, ...)
        figures["Metric vs model size"] = plot_by(
            sized, "total_params", metric, "model size (total parameters)", series
        )
    figures["Peak memory and train time"] = plot_cost(rows, names)
    return {title: png(fig) for title, fig in figures.items()}


def hyper_plots(rows: list[Row], metric: str, hypers: list[Hyper]) -> dict[str, plt.Figure]:
    """Metric against each numeric method hyperparameter that varies within a method (LoRA rank, prompt
    length, lr, ...), one line per base model and other hyperparameters."""
    figures = {}
    for method in sorted({r["method"] for r in rows}):
        for hyper in (h for h in hypers if h.key.startswith("method.")):
            mine = [r for r in rows if r["method"] == method and is_number(r[hyper.name])]
            if varies(mine, hyper.name):
                series = labeller(mine, label_keys([h for h in hypers if h != hyper]))
                xlabel = f"{method} {hyper.name}"
                figures[f"Metric vs {xlabel}"] = plot_by(mine, hyper.name, metric, xlabel, series, ticks_at_values=True)
    return figures


def label_keys(hypers: list[Hyper]) -> list[str]:
    """The hyperparameter columns that may name a config in a plot: not the architecture (model.config.*),
    which the model's name already says (model_names)."""
    return [h.name for h in hypers if not h.key.startswith("model.config.")]


def varies(rows: list[Row], key: str) -> bool:
    return len({json.dumps(r.get(key), sort_keys=True) for r in rows if r.get(key) is not None}) > 1


def model_names(rows: list[Row]) -> dict[str, str]:
    """Each base model (HIDDEN_MODEL) by name, plus the architecture keys in which it differs from another
    model of that name (`tiny_t5 d_model=256`): two widths of one model must not read alike."""
    models = {r[HIDDEN_MODEL]: json.loads(r[HIDDEN_MODEL]) for r in rows}
    names = {}
    for key, (name, config) in models.items():
        same = [c or {} for n, c in models.values() if n == name]
        differ = sorted(k for k in set().union(*same) if len({json.dumps(c.get(k)) for c in same}) > 1)
        names[key] = " ".join([name, *(f"{k}={(config or {}).get(k)}" for k in differ)])
    return names


def labeller(rows: list[Row], hypers: list[str], with_model: bool = True) -> Callable[[Row], str]:
    """Names configs by method plus whatever else varies among them: the model (unless `with_model` is
    false) and data, and the hyperparameters that vary within a method (rank, lr, ...; not an lr that
    merely differs between methods)."""
    models = model_names(rows) if with_model and varies(rows, HIDDEN_MODEL) else {}
    by_method = [[r for r in rows if r["method"] == m] for m in sorted({r["method"] for r in rows})]
    keys = ["data"] * varies(rows, "data") + [k for k in hypers if any(varies(g, k) for g in by_method)]
    return lambda row: " ".join(
        [row["method"], *([models[row[HIDDEN_MODEL]]] if models else [])]
        + [f"{k}={format_value(k, row[k])}" for k in keys if row.get(k) is not None]
    )


def zero_shot_lines(rows: list[Row]) -> dict[str, float]:
    """Label -> the base model's score before training (mean over runs): one reference per base model
    and data set, labelled plainly "zero-shot" when the runs share one."""
    scores: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        if r[HIDDEN_ZERO_SHOT] is not None:
            scores.setdefault((r[HIDDEN_MODEL], r["data"]), []).append(r[HIDDEN_ZERO_SHOT])
    if len(scores) == 1:
        return {"zero-shot": statistics.fmean(next(iter(scores.values())))}
    names = model_names(rows)
    with_data = len({data for _, data in scores}) > 1
    return {
        " ".join(["zero-shot", names[model], *[data] * with_data]): statistics.fmean(values)
        for (model, data), values in scores.items()
    }


def draw_zero_shot(ax: plt.Axes, rows: list[Row]) -> None:
    """Dashed horizontal references, each labelled on the plot and in the legend."""
    lines = zero_shot_lines(rows)
    for i, (label, y) in enumerate(lines.items()):
        colour = str(0.25 + 0.4 * i / max(len(lines) - 1, 1))  # greys: the runs keep the colours
        ax.axhline(y, linestyle="--", linewidth=1, color=colour, label=label)
        ax.annotate(label, (1, y), xycoords=("axes fraction", "data"), ha="right", va="bottom", fontsize=7)


def png(fig: plt.Figure) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    pyplot().close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _errorbar(ax: plt.Axes, rows: list[Row], x: str, metric: str, **kwargs: Any) -> None:
    rows = sorted(rows, key=lambda r: r[x])
    ys = [r[f"{metric} mean"] for r in rows]
    errs = [r[f"{metric} std"] or 0.0 for r in rows]
    ax.errorbar([r[x] for r in rows], ys, yerr=errs, **({"marker": "o", "capsize": 3} | kwargs))


def pareto_front(points: list[tuple[float, float]], lower_better: bool) -> list[tuple[float, float]]:
    """Points no other point beats on both axes: fewer trainable parameters and a better metric."""
    front: list[tuple[float, float]] = []
    for x, y in sorted(points, key=lambda p: (p[0], p[1] if lower_better else -p[1])):
        if not front or (y < front[-1][1] if lower_better else y > front[-1][1]):
            front.append((x, y))
    return front


ANNOTATED = 8  # more points than this are told apart by the legend alone: their labels would overlap
MARKERS = "osD^v<>ph*"


def plot_tradeoff(rows: list[Row], metric: str, hypers: list[str]) -> plt.Figure:
    """One colour and marker per method, its legend beside the axes; a config run at one seed (a grid point of a
    study's search) faded, one run at several seeds (a chosen rate) solid with its error bar. Each point is
    labelled only when there are few enough for the labels not to overlap."""
    from matplotlib.ticker import NullFormatter

    fig, ax = pyplot().subplots(figsize=(8.5, 4.5))
    for i, method in enumerate(sorted({r["method"] for r in rows})):
        mine = [r for r in rows if r["method"] == method]
        style = {"color": f"C{i % 10}", "marker": MARKERS[i // 10 % len(MARKERS)], "linestyle": "none"}
        seeded = [r for r in mine if (r.get("seeds") or 1) > 1]
        _errorbar(ax, seeded or mine, "trainable", metric, label=method, **style)
        if seeded and (single := [r for r in mine if (r.get("seeds") or 1) == 1]):
            _errorbar(ax, single, "trainable", metric, alpha=0.3, **style)
    if len(rows) <= ANNOTATED:
        label = labeller(rows, hypers)
        for r in rows:
            ax.annotate(label(r), (r["trainable"], r[f"{metric} mean"]), fontsize=7, alpha=0.7)
    front = pareto_front([(r["trainable"], r[f"{metric} mean"]) for r in rows], lower_is_better(metric))
    ax.step(*zip(*front, strict=True), where="post", color="black", linewidth=1, alpha=0.6, label="Pareto frontier")
    draw_zero_shot(ax, rows)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set(xlabel="trainable parameters (log)", ylabel=metric, title=f"{metric} vs trainable parameters")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    return fig


def plot_by(
    rows: list[Row],
    x: str,
    metric: str,
    xlabel: str,
    series: Callable[[Row], str],
    ticks_at_values: bool = False,
) -> plt.Figure:
    """`metric` against `x`, one line per `series` label. A positive axis is logarithmic: an integer one
    with `ticks_at_values` (LoRA rank, prompt length) in powers of two, ticked at the values run."""
    from matplotlib.ticker import NullFormatter

    fig, ax = pyplot().subplots(figsize=(7, 4.5))
    for label in dict.fromkeys(series(r) for r in rows):  # in the rows' order: rank 4 before 16
        _errorbar(ax, [r for r in rows if series(r) == label], x, metric, label=label)
    draw_zero_shot(ax, rows)
    values = sorted({r[x] for r in rows})
    scale = ""
    if min(values) > 0 and ticks_at_values and all(isinstance(v, int) for v in values):
        ax.set_xscale("log", base=2)
        ax.set_xticks(values, [format_value(x, v) for v in values])
        ax.minorticks_off()
        scale = " (log 2)"
    elif min(values) > 0:
        ax.set_xscale("log")
        scale = " (log)"
    ax.xaxis.set_minor_formatter(NullFormatter())  # labelled minor ticks overlap on a short log axis
    ax.set(xlabel=xlabel + scale, ylabel=metric, title=f"{metric} vs {xlabel.split(' (')[0]}")
    ax.legend(fontsize=8)
    return fig


def plot_cost(rows: list[Row], hypers: list[str]) -> plt.Figure:
    label = labeller(rows, hypers)
    names = [f"{i}. {label(r)}" for i, r in enumerate(rows, 1)]  # numbered: labels may still coincide
    fig, axes = pyplot().subplots(1, 2, figsize=(10, 0.35 * len(rows) + 1.5))
    for ax, key, xlabel in zip(
        axes, ("peak_rss_mb mean", "train_s mean"), ("peak RSS (MB)", "train time (s)"), strict=True
    ):
        ax.barh(names, [r[key] or 0.0 for r in rows])
        ax.set(xlabel=xlabel)
        ax.invert_yaxis()
    axes[1].set_yticklabels([])
    fig.suptitle("memory and train time per config")
    return fig
