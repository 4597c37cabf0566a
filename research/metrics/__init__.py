"""Metrics by name: each a function (predictions, references) -> scores, registered with `@metric(name)`. A task
lists the names it is scored by (research/tasks); a new metric is one function here and its decorator line.
`rouge` and `bleu` are evaluate modules shipped in this package (offline); other evaluate names come from the hub."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

import evaluate

LOCAL = Path(__file__).parent

Metric = Callable[[list[Any], list[Any]], dict[str, float]]
METRICS: dict[str, Metric] = {}


def metric(name: str) -> Callable[[Metric], Metric]:
    """Registers the decorated function as the metric `name`."""

    def register(function: Metric) -> Metric:
        METRICS[name] = function
        return function

    return register


def score(names: Iterable[str], predictions: list[Any], references: list[Any]) -> dict[str, float]:
    """Every named metric's scores, in the order named."""
    scores: dict[str, float] = {}
    for name in names:
        scores.update(METRICS[name](predictions, references))
    return scores


@cache
def load_metric(name: str) -> evaluate.EvaluationModule:
    """`rouge` and `bleu` load from this package by path (no hub); any other name goes to the hub."""
    local = LOCAL / name / f"{name}.py"
    return evaluate.load(str(local) if local.exists() else name)


@metric("rouge")
def rouge(predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    """ROUGE-1/2/L/Lsum F1 in 0..1. With several references per example, `rouge*` is best-of and `rouge*_mean`
    the mean over references, so both aggregations are on record."""
    module = load_metric("rouge")
    scores = module.compute(predictions=predictions, references=references, multi_ref="max")
    if any(len(refs) > 1 for refs in references):
        mean = module.compute(predictions=predictions, references=references, multi_ref="mean")
        scores.update({f"{k}_mean": v for k, v in mean.items()})
    return scores


@metric("bleu")
def bleu(predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    """Corpus BLEU (sacrebleu, 0..100) over every reference, as corpus BLEU does."""
    return load_metric("bleu").compute(predictions=predictions, references=references)


@metric("accuracy")
def accuracy(predictions: list[int], labels: list[int]) -> dict[str, float]:
    return {"accuracy": sum(p == y for p, y in zip(predictions, labels, strict=True)) / len(labels)}


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
