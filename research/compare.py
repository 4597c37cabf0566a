"""Compare finished runs:  python -m research.compare <sweep or run dirs ...> [--out DIR] [--metric KEY]

Reads every run.json under the given folders (recursively) and writes comparison.md, comparison.csv and
comparison.html (tables + plots embedded as base64 PNG: it opens offline, no CDN) into --out (default:
the first folder). Runs that differ only by seed are one *config*: reported as mean and std over seeds.
run.json is the only input, so runs of different sweeps, launches and machines compare alike.
"""

from __future__ import annotations

import argparse
import base64
import copy
import csv
import html
import io
import json
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display, no GUI toolkit
import matplotlib.pyplot as plt  # noqa: E402

from research.tracking.record import RUN_FILE, config_hash, read_record  # noqa: E402

# Headline metric by task: the first one present in the completed runs' metrics wins.
AUTO_METRICS = ("test/rouge1", "test/accuracy", "test/loss")
# Method/model hyperparameters worth a column when a run's config has them (column -> dotted config key).
HYPER_KEYS = {
    "rank": ("method.rank",),
    "alpha": ("method.alpha",),
    "virtual_tokens": ("method.num_virtual_tokens", "method.peft_config.num_virtual_tokens"),
    "lr": ("method.lr",),
}
SEED_KEYS = (("seed",), ("data", "seed"))  # what "differ only by seed" ignores
HIDDEN_MODEL = "_model"  # group-row key naming the base model (name + architecture), used by plots only


@dataclass
class Group:
    """Completed runs of one config (all keys equal but the seed)."""

    key: str
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def first(self) -> dict[str, Any]:
        return self.runs[0]

    def values(self, get: Callable[[dict[str, Any]], float | None]) -> list[float]:
        return [v for r in self.runs if (v := get(r)) is not None]


# --- loading --------------------------------------------------------------------------------------


def load_records(dirs: Iterable[Path]) -> list[dict[str, Any]]:
    """Every run.json under `dirs`, each with its folder in `run_dir`, a record once even if found twice."""
    found: dict[Path, dict[str, Any]] = {}
    for root in dirs:
        for path in sorted(Path(root).rglob(RUN_FILE)):
            run_dir = path.parent.resolve()
            if run_dir not in found and (record := read_record(run_dir)):
                found[run_dir] = record | {"run_dir": str(run_dir)}
    return list(found.values())


def latest_per_config(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per config_hash: a completed one over a failed or unfinished one, then the newest.
    A failure that a re-launch then completed is history, not an open failure."""
    best: dict[str, dict[str, Any]] = {}
    for r in records:
        rank = (r["status"] == "completed", r.get("started_at") or 0)
        kept = best.get(r["config_hash"])
        if kept is None or rank > (kept["status"] == "completed", kept.get("started_at") or 0):
            best[r["config_hash"]] = r
    return sorted(best.values(), key=lambda r: (r.get("started_at") or 0, r["run_dir"]))


def seedless_hash(record: dict[str, Any]) -> str:
    """config_hash of the config with the seed removed: equal for runs that differ only by seed."""
    config = copy.deepcopy(record["config"])
    for path in SEED_KEYS:
        node = config
        for key in path[:-1]:
            node = node.get(key) or {}
        node.pop(path[-1], None)
    return config_hash(config)


def choose_metric(records: list[dict[str, Any]]) -> str:
    present = {k for r in records for k in r["metrics"]}
    return next((m for m in AUTO_METRICS if m in present), "test/loss")


def lower_is_better(metric: str) -> bool:
    return metric.rsplit("/", 1)[-1] in ("loss", "perplexity")


# --- rows -----------------------------------------------------------------------------------------


def lookup(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def hyper(record: dict[str, Any], column: str) -> Any:
    return next((v for k in HYPER_KEYS[column] if (v := lookup(record["config"], k)) is not None), None)


def hyper_columns(records: list[dict[str, Any]]) -> list[str]:
    """Only the hyperparameter columns that some run has (no empty `rank` column in a prompt sweep)."""
    return [c for c in HYPER_KEYS if any(hyper(r, c) is not None for r in records)]


def run_row(record: dict[str, Any], metric: str, hypers: list[str]) -> dict[str, Any]:
    params, metrics = record["params"], record["metrics"]
    zero_shot = metric.replace("test/", "zero_shot/", 1)
    return {
        "method": record["method"],
        "model": record["model"],
        "data": record["data"],
        "seed": record.get("seed"),
        **{c: hyper(record, c) for c in hypers},
        "total_params": params.get("total"),
        "trainable": params.get("trainable"),
        "trainable_pct": params.get("trainable_pct"),
        metric: metrics.get(metric),
        zero_shot: metrics.get(zero_shot),
        "test/loss": metrics.get("test/loss"),
        "val/loss": metrics.get("val/loss"),  # what sweep=lr_search selects on
        "train_s": record["timing"].get("train_s"),
        "peak_rss_mb": record["memory"].get("peak_rss_mb"),
        "status": record["status"],
        "run_dir": record["run_dir"],
    }


def failed_row(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "method": record["method"],
        "model": record["model"],
        "data": record["data"],
        "seed": record.get("seed"),
        "status": record["status"],
        "error": (record.get("error") or "(still running, or killed)").splitlines()[0],
        "run_dir": record["run_dir"],
    }


# --- aggregation ----------------------------------------------------------------------------------


def group_by_config(completed: list[dict[str, Any]]) -> list[Group]:
    groups: dict[str, Group] = {}
    for r in completed:
        key = seedless_hash(r)
        groups.setdefault(key, Group(key)).runs.append(r)
    return list(groups.values())


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def group_row(group: Group, metric: str, hypers: list[str]) -> dict[str, Any]:
    first = group.first
    m_mean, m_std = mean_std(group.values(lambda r: r["metrics"].get(metric)))
    return {
        "method": first["method"],
        "model": first["model"],
        "data": first["data"],
        **{c: hyper(first, c) for c in hypers},
        "seeds": len(group.runs),
        "total_params": first["params"].get("total"),
        "trainable": first["params"].get("trainable"),
        "trainable_pct": first["params"].get("trainable_pct"),
        f"{metric} mean": m_mean,
        f"{metric} std": m_std,
        "train_s mean": mean_std(group.values(lambda r: r["timing"].get("train_s")))[0],
        "peak_rss_mb mean": mean_std(group.values(lambda r: r["memory"].get("peak_rss_mb")))[0],
        HIDDEN_MODEL: json.dumps([first["model"], first["config"]["model"].get("config")], sort_keys=True),
    }


def pareto_front(points: list[tuple[float, float]], lower_better: bool) -> list[tuple[float, float]]:
    """Points no other point beats on both axes: fewer trainable parameters and a better metric."""
    front: list[tuple[float, float]] = []
    for x, y in sorted(points, key=lambda p: (p[0], p[1] if lower_better else -p[1])):
        if not front or (y < front[-1][1] if lower_better else y > front[-1][1]):
            front.append((x, y))
    return front


# --- plots ----------------------------------------------------------------------------------------


def model_names(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Each base model (HIDDEN_MODEL) by name, plus the architecture keys in which it differs from another
    model of that name (`tiny_t5 d_model=256`): two widths of one model must not read alike."""
    models = {r[HIDDEN_MODEL]: json.loads(r[HIDDEN_MODEL]) for r in rows}
    names = {}
    for key, (name, config) in models.items():
        same = [c or {} for n, c in models.values() if n == name]
        differ = sorted(k for k in set().union(*same) if len({json.dumps(c.get(k)) for c in same}) > 1)
        names[key] = " ".join([name, *(f"{k}={(config or {}).get(k)}" for k in differ)])
    return names


def labeller(rows: list[dict[str, Any]], hypers: list[str], with_model: bool = True) -> Callable[[dict[str, Any]], str]:
    """Names configs by method plus whatever else varies among them: the model (unless `with_model` is
    false) and data, and the hyperparameters that vary within a method (rank, lr, ...; not an lr that
    merely differs between methods)."""
    models = model_names(rows) if with_model and varies(rows, HIDDEN_MODEL) else {}
    by_method = [[r for r in rows if r["method"] == m] for m in sorted({r["method"] for r in rows})]
    keys = ["data"] * varies(rows, "data") + [k for k in hypers if any(varies(g, k) for g in by_method)]
    return lambda row: " ".join(
        [row["method"], *([models[row[HIDDEN_MODEL]]] if models else [])]
        + [f"{k}={fmt(row[k])}" for k in keys if row.get(k) is not None]
    )


def _png(fig: plt.Figure) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _errorbar(ax: plt.Axes, rows: list[dict[str, Any]], x: str, metric: str, **kwargs: Any) -> None:
    rows = sorted(rows, key=lambda r: r[x])
    ys = [r[f"{metric} mean"] for r in rows]
    errs = [r[f"{metric} std"] or 0.0 for r in rows]
    ax.errorbar([r[x] for r in rows], ys, yerr=errs, marker="o", capsize=3, **kwargs)


def plot_tradeoff(rows: list[dict[str, Any]], metric: str, hypers: list[str]) -> str:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method in sorted({r["method"] for r in rows}):
        _errorbar(ax, [r for r in rows if r["method"] == method], "trainable", metric, label=method, linestyle="none")
    label = labeller(rows, hypers)
    for r in rows:
        ax.annotate(label(r), (r["trainable"], r[f"{metric} mean"]), fontsize=7, alpha=0.7)
    front = pareto_front([(r["trainable"], r[f"{metric} mean"]) for r in rows], lower_is_better(metric))
    ax.step(*zip(*front, strict=True), where="post", color="black", linewidth=1, alpha=0.6, label="Pareto frontier")
    ax.set(xscale="log", xlabel="trainable parameters (log)", ylabel=metric, title=f"{metric} vs trainable parameters")
    ax.legend(fontsize=8)
    return _png(fig)


def plot_by(
    rows: list[dict[str, Any]], x: str, metric: str, xlabel: str, series: Callable[[dict[str, Any]], str]
) -> str:
    """`metric` against `x` (log scale), one line per `series` label. An integer axis (LoRA rank) is in
    powers of two, ticked at the values run."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label in sorted({series(r) for r in rows}):
        _errorbar(ax, [r for r in rows if series(r) == label], x, metric, label=label)
    if x == "rank":
        values = sorted({r[x] for r in rows})
        ax.set_xscale("log", base=2)
        ax.set_xticks(values, [str(v) for v in values])
        ax.minorticks_off()
    else:
        ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel=metric, title=f"{metric} vs {xlabel.split(' (')[0]}")
    ax.legend(fontsize=8)
    return _png(fig)


def plot_cost(rows: list[dict[str, Any]], hypers: list[str]) -> str:
    label = labeller(rows, hypers)
    names = [f"{i}. {label(r)}" for i, r in enumerate(rows, 1)]  # numbered: labels may still coincide
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.35 * len(rows) + 1.5))
    for ax, key, xlabel in zip(
        axes, ("peak_rss_mb mean", "train_s mean"), ("peak RSS (MB)", "train time (s)"), strict=True
    ):
        ax.barh(names, [r[key] or 0.0 for r in rows])
        ax.set(xlabel=xlabel)
        ax.invert_yaxis()
    axes[1].set_yticklabels([])
    fig.suptitle("memory and train time per config")
    return _png(fig)


def varies(rows: list[dict[str, Any]], key: str) -> bool:
    return len({r.get(key) for r in rows if r.get(key) is not None}) > 1


def make_plots(groups: list[dict[str, Any]], metric: str, hypers: list[str]) -> dict[str, str]:
    """Title -> base64 PNG, only for the plots the runs can fill."""
    rows = [r for r in groups if r[f"{metric} mean"] is not None]
    if not rows:
        return {}
    plots = {"Metric vs trainable parameters": plot_tradeoff(rows, metric, hypers)}
    lora = [r for r in rows if r["method"] == "lora"]
    if varies(lora, "rank"):  # one line per base model (and other hyperparameters), ranks on the x axis
        series = labeller(lora, [h for h in hypers if h != "rank"])
        plots["Metric vs LoRA rank"] = plot_by(lora, "rank", metric, "LoRA rank (log 2)", series)
    # Model size: methods run on several models (names or architectures), not LoRA's rank changing the total.
    sized = [r for r in rows if varies([s for s in rows if s["method"] == r["method"]], HIDDEN_MODEL)]
    if sized:  # one line per method (and rank, ...), model sizes on the x axis
        series = labeller(sized, hypers, with_model=False)
        plots["Metric vs model size"] = plot_by(
            sized, "total_params", metric, "model size (total parameters, log)", series
        )
    plots["Peak memory and train time"] = plot_cost(rows, hypers)
    return plots


# --- writers --------------------------------------------------------------------------------------


def fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "_none_\n"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r[c]).replace("|", "\\|") for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def html_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p><em>none</em></p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(_cell(v) for v in r.values()) + "</tr>" for r in rows)
    return f"<div class='wide'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _cell(value: Any) -> str:
    """Numbers right-aligned; long text (errors, paths) wrapped at any character, other cells kept whole."""
    text = fmt(value)
    kind = "n" if isinstance(value, int | float) and not isinstance(value, bool) else "long" if len(text) > 40 else ""
    return f"<td{f' class={kind}' if kind else ''}>{html.escape(text)}</td>"


@dataclass
class Report:
    metric: str
    runs: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    failed: list[dict[str, Any]]
    plots: dict[str, str]

    def sections(self) -> list[tuple[str, list[dict[str, Any]]]]:
        groups = [{k: v for k, v in g.items() if k != HIDDEN_MODEL} for g in self.groups]
        return [
            (f"Configs: mean and std of {self.metric} over seeds", groups),
            ("Completed runs", [{k: v for k, v in r.items() if k != "status"} for r in self.runs]),
            ("Failed and unfinished runs", self.failed),
        ]


def write_markdown(report: Report, path: Path) -> None:
    parts = [f"# Comparison\n\nHeadline metric: `{report.metric}`\n"]
    parts += [f"## {title}\n\n{markdown_table(rows)}" for title, rows in report.sections()]
    parts.append("Plots: see comparison.html\n")
    path.write_text("\n".join(parts))


def write_csv(report: Report, path: Path) -> None:
    """One row per run (completed first, then failed/unfinished), columns the union of both tables."""
    rows = report.runs + report.failed
    cols = list(dict.fromkeys(c for r in rows for c in r))
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols)
        writer.writeheader()
        writer.writerows(rows)


STYLE = (
    "body{font-family:sans-serif;margin:2em}.wide{overflow-x:auto}table{border-collapse:collapse;font-size:13px}"
    "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top;white-space:nowrap}"
    "td.n{text-align:right}td.long{white-space:normal;overflow-wrap:anywhere;min-width:14em}th{background:#eee}"
    "img{max-width:100%}"
)


def write_html(report: Report, path: Path) -> None:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Comparison</title><style>{STYLE}</style></head>"]
    parts.append(f"<body><h1>Comparison</h1><p>Headline metric: <code>{html.escape(report.metric)}</code></p>")
    parts += [f"<h2>{html.escape(title)}</h2>{html_table(rows)}" for title, rows in report.sections()]
    parts += [
        f"<h2>{html.escape(t)}</h2><img alt='{html.escape(t)}' src='data:image/png;base64,{png}'>"
        for t, png in report.plots.items()
    ]
    path.write_text("".join(parts) + "</body></html>")


# --- entry point ----------------------------------------------------------------------------------


def build_report(records: list[dict[str, Any]], metric: str | None = None) -> Report:
    records = latest_per_config(records)
    completed = [r for r in records if r["status"] == "completed"]
    metric = metric or choose_metric(completed)
    hypers = hyper_columns(completed)
    groups = [group_row(g, metric, hypers) for g in group_by_config(completed)]
    return Report(
        metric=metric,
        runs=[run_row(r, metric, hypers) for r in completed],
        groups=groups,
        failed=[failed_row(r) for r in records if r["status"] != "completed"],
        plots=make_plots(groups, metric, hypers),
    )


def compare(dirs: list[Path], out: Path | None = None, metric: str | None = None) -> Report:
    records = load_records(dirs)
    if not records:
        raise SystemExit(f"no {RUN_FILE} under {', '.join(map(str, dirs))}")
    report = build_report(records, metric)
    out = out or dirs[0]
    out.mkdir(parents=True, exist_ok=True)
    write_markdown(report, out / "comparison.md")
    write_csv(report, out / "comparison.csv")
    write_html(report, out / "comparison.html")
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path, help="sweep or run folders, searched recursively")
    parser.add_argument("--out", type=Path, help="where the three files go (default: the first folder)")
    parser.add_argument("--metric", help="headline metric key, e.g. test/rougeL (default: by task)")
    args = parser.parse_args(argv)
    report = compare(args.dirs, args.out, args.metric)
    out = args.out or args.dirs[0]
    print(
        markdown_table(report.sections()[0][1])
        + f"\n{len(report.runs)} completed, {len(report.failed)} failed/unfinished"
    )
    print(f"wrote {out}/comparison.{{md,csv,html}}")


if __name__ == "__main__":
    main()
