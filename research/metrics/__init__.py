"""Metrics by name: each a function (predictions, references) -> scores, registered with `@metric(name)`. A task
lists the names it is scored by (research/tasks); a new metric is one function here and its decorator line.
`rouge` and `bleu` are evaluate modules shipped in this package (offline); other evaluate names come from the hub.

A metric that has a score per example also registers that form with `@per_example(name)`: (predictions,
references) -> {key: one score per row}. predictions.jsonl keeps them, and `peftlab compare` resamples them to
say whether two arms differ. Macro-F1 has none: it is a property of the whole split, not of one row."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

import evaluate
import sacrebleu

LOCAL = Path(__file__).parent

Metric = Callable[[list[Any], list[Any]], dict[str, float]]
PerExample = Callable[[list[Any], list[Any]], dict[str, list[float]]]
METRICS: dict[str, Metric] = {}
PER_EXAMPLE: dict[str, PerExample] = {}


def metric(name: str) -> Callable[[Metric], Metric]:
    """Registers the decorated function as the metric `name`."""

    def register(function: Metric) -> Metric:
        METRICS[name] = function
        return function

    return register


def per_example(name: str) -> Callable[[PerExample], PerExample]:
    """Registers the decorated function as the per-example form of the metric `name`."""

    def register(function: PerExample) -> PerExample:
        PER_EXAMPLE[name] = function
        return function

    return register


def score(names: Iterable[str], predictions: list[Any], references: list[Any]) -> dict[str, float]:
    """Every named metric's scores, in the order named."""
    scores: dict[str, float] = {}
    for name in names:
        scores.update(METRICS[name](predictions, references))
    return scores


def example_scores(names: Iterable[str], predictions: list[Any], references: list[Any]) -> list[dict[str, float]]:
    """Each row's scores by every named metric that has a per-example form, in the order named."""
    columns: dict[str, list[float]] = {}
    for name in names:
        if name in PER_EXAMPLE:
            columns.update(PER_EXAMPLE[name](predictions, references))
    if not columns:
        return [{} for _ in predictions]
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


@cache
def load_metric(name: str) -> evaluate.EvaluationModule:
    """`rouge` and `bleu` load from this package by path (no hub); any other name goes to the hub."""
    local = LOCAL / name / f"{name}.py"
    return evaluate.load(str(local) if local.exists() else name)


@metric("rouge")
def rouge(predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    """ROUGE-1/2/L/Lsum F1 in 0..1. With several references per example, `rouge*` is best-of and `rouge*_mean`
    the mean over references, so both aggregations are on record."""
    return {key: sum(rows) / len(rows) if rows else 0.0 for key, rows in rouge_rows(predictions, references).items()}


@per_example("rouge")
def rouge_rows(predictions: list[str], references: list[list[str]]) -> dict[str, list[float]]:
    """Each row's ROUGE F1 (`rouge` is their mean)."""
    module = load_metric("rouge")
    rows = module.compute(predictions=predictions, references=references, multi_ref="max", use_aggregator=False)
    if any(len(refs) > 1 for refs in references):
        mean = module.compute(predictions=predictions, references=references, multi_ref="mean", use_aggregator=False)
        rows.update({f"{k}_mean": v for k, v in mean.items()})
    return rows


@metric("bleu")
def bleu(predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    """Corpus BLEU (sacrebleu, 0..100) over every reference, as corpus BLEU does."""
    return load_metric("bleu").compute(predictions=predictions, references=references)


@per_example("bleu")
def bleu_rows(predictions: list[str], references: list[list[str]]) -> dict[str, list[float]]:
    """Each row's sentence BLEU (sacrebleu, 0..100, smoothed). Their mean is not corpus BLEU, which pools the
    n-gram counts of every row before taking the ratio; it is what a per-example comparison can resample."""
    return {
        "bleu": [sacrebleu.sentence_bleu(p, list(refs)).score for p, refs in zip(predictions, references, strict=True)]
    }


@metric("accuracy")
def accuracy(predictions: list[int], labels: list[int]) -> dict[str, float]:
    rows = accuracy_rows(predictions, labels)["accuracy"]
    return {"accuracy": sum(rows) / len(rows)}


@per_example("accuracy")
def accuracy_rows(predictions: list[int], labels: list[int]) -> dict[str, list[float]]:
    """1.0 where the row is right, else 0.0."""
    return {"accuracy": [float(p == y) for p, y in zip(predictions, labels, strict=True)]}


@metric("f1")
def macro_f1(predictions: list[int], labels: list[int]) -> dict[str, float]:
    """Macro-F1: each class's F1, averaged (for two classes, the positive-class F1 averaged with the negative one)."""
    pairs = list(zip(predictions, labels, strict=True))
    f1s = []
    for c in sorted(set(labels) | set(predictions)):
        tp = sum(p == c and y == c for p, y in pairs)
        fp = sum(p == c and y != c for p, y in pairs)
        fn = sum(p != c and y == c for p, y in pairs)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return {"f1": sum(f1s) / len(f1s)}
