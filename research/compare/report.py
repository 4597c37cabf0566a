"""The report and its three files: comparison.md, comparison.csv, comparison.html (plots embedded, so it
opens offline). Every table cell goes through columns.format_value: one number format in all three."""

from __future__ import annotations

import csv
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from research.compare.columns import Hyper, format_value
from research.compare.records import Unreadable

Row = dict[str, Any]
FILES = ("comparison.md", "comparison.csv", "comparison.html")
DECIDED = "Decided?"
HEADLINE = "Arms at their chosen rates"


@dataclass
class Report:
    metric: str
    runs: list[Row]
    groups: list[Row]
    failed: list[Row]
    plots: dict[str, str]
    hypers: list[Hyper] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)
    note: str | None = None  # why the headline metric does not rank the runs, when it does not
    command: str | None = None  # the command that wrote this report, so anyone can write it again
    run_seconds: list[float] = field(default_factory=list)  # every run read, stopped ones and repeats too
    decided: list[Row] = field(default_factory=list)  # research/compare/decided_table.py
    decided_note: str | None = None  # how its intervals were made, or why there is no table
    headline: list[Row] = field(default_factory=list)  # a study's arms at their chosen rates (study_table.py)
    headline_note: str | None = None

    def cost(self) -> str | None:
        """What the runs cost the machine: a study's time, written by the tool rather than added up by hand."""
        if not self.run_seconds:
            return None
        hours = sum(self.run_seconds) / 3600
        return (
            f"{len(self.run_seconds)} runs, {hours:.2f} h of run time in all "
            "(each run's start to finish on the wall clock, summed; unfinished and superseded runs included)"
        )

    def sections(self) -> list[tuple[str, list[Row]]]:
        sections = [(HEADLINE, self.headline)] if self.headline_note else []
        sections += [(f"Configs: mean and std of {self.metric} over seeds", [visible(g) for g in self.groups])]
        if self.decided_note:
            sections.append((DECIDED, self.decided))
        sections += [
            ("Completed runs", [{k: v for k, v in visible(r).items() if k != "status"} for r in self.runs]),
            ("Failed and unfinished runs", self.failed),
        ]
        if self.unreadable:
            rows = [{"path": str(u.path), "problem": u.problem} for u in self.unreadable]
            sections.append(("Unreadable records (skipped)", rows))
        return sections

    def caption(self, title: str) -> str | None:
        """The line under a section's title: a table with no rows shows only it."""
        return {DECIDED: self.decided_note, HEADLINE: self.headline_note}.get(title)


def visible(row: Row) -> Row:
    """The row less its plot-only keys (those starting with an underscore)."""
    return {k: v for k, v in row.items() if not k.startswith("_")}


def report_paths(out: Path) -> list[Path]:
    return [out / name for name in FILES]


def write_report(report: Report, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    md, csv_path, html_path = report_paths(out)
    write_markdown(report, md)
    write_csv(report, csv_path)
    write_html(report, html_path)
    return [md, csv_path, html_path]


# --- markdown -------------------------------------------------------------------------------------


def markdown_table(rows: list[Row]) -> str:
    if not rows:
        return "_none_\n"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_md_cell(c, r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _md_cell(column: str, value: Any) -> str:
    return format_value(column, value).replace("|", "\\|").replace("\n", " ")


def write_markdown(report: Report, path: Path) -> None:
    parts = [f"# Comparison\n\nHeadline metric: `{report.metric}`\n"]
    if report.command:
        parts.append(f"Written by: `{report.command}`\n")
    if cost := report.cost():
        parts.append(f"Run time: {cost}\n")
    if report.note:
        parts.append(f"**Note:** {report.note}\n")
    for title, rows in report.sections():
        caption = report.caption(title)
        table = markdown_table(rows) if rows or not caption else ""
        parts.append(f"## {title}\n\n" + (f"{caption}\n\n" if caption else "") + table)
    parts.append("Plots: see comparison.html\n")
    path.write_text("\n".join(parts))


# --- csv ------------------------------------------------------------------------------------------


def write_csv(report: Report, path: Path) -> None:
    """One row per run (completed first, then failed/unfinished), columns the union of both tables. Raw
    values at full precision: the csv is for other tools (pandas, a spreadsheet); md and html are for reading."""
    rows = report.runs + report.failed
    cols = list(dict.fromkeys(c for r in rows for c in r))
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols)
        writer.writeheader()
        writer.writerows({c: r.get(c) for c in cols} for r in rows)


# --- html -----------------------------------------------------------------------------------------

# Tables scroll inside their own box (.wide), so the page is never wider than the window.
STYLE = (
    "body{font-family:sans-serif;margin:2em}.wide{overflow-x:auto;max-width:100%}"
    "table{border-collapse:collapse;font-size:13px}"
    "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top;white-space:nowrap}"
    "td.n{text-align:right}td.long{white-space:normal;overflow-wrap:anywhere;min-width:14em}th{background:#eee}"
    ".note{background:#fff4d6;border-left:4px solid #e0a800;padding:6px 10px}img{max-width:100%}"
)


def html_table(rows: list[Row]) -> str:
    if not rows:
        return "<p><em>none</em></p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(_html_cell(c, v) for c, v in r.items()) + "</tr>" for r in rows)
    return f"<div class='wide'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _html_cell(column: str, value: Any) -> str:
    """Numbers right-aligned; long text (errors, paths) wrapped at any character, other cells kept whole."""
    text = format_value(column, value)
    kind = "n" if isinstance(value, int | float) and not isinstance(value, bool) else "long" if len(text) > 40 else ""
    return f"<td{f' class={kind}' if kind else ''}>{html.escape(text)}</td>"


def write_html(report: Report, path: Path) -> None:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Comparison</title><style>{STYLE}</style></head>"]
    parts.append(f"<body><h1>Comparison</h1><p>Headline metric: <code>{html.escape(report.metric)}</code></p>")
    if report.command:
        parts.append(f"<p>Written by: <code>{html.escape(report.command)}</code></p>")
    if cost := report.cost():
        parts.append(f"<p>Run time: {html.escape(cost)}</p>")
    if report.note:
        parts.append(f"<p class='note'>{html.escape(report.note)}</p>")
    for title, rows in report.sections():
        caption = report.caption(title)
        table = html_table(rows) if rows or not caption else ""
        parts.append(f"<h2>{html.escape(title)}</h2>" + (f"<p>{html.escape(caption)}</p>" if caption else "") + table)
    parts += [
        f"<h2>{html.escape(t)}</h2><img alt='{html.escape(t)}' src='data:image/png;base64,{png}'>"
        for t, png in report.plots.items()
    ]
    path.write_text("".join(parts) + "</body></html>")
