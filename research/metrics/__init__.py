"""Metrics by name: each a function (predictions, references) -> scores, registered with `@metric(name)`. A task
lists the names it is scored by (research/tasks); a new metric is one function here and its decorator line.
`rouge` is Google's rouge_score and `bleu` sacrebleu, called directly (offline, no metric scripts to load).

ROUGE, two deliberate choices: the split's score is the arithmetic mean of per-example F1 (deterministic; the hub's
`rouge` metric reports the median of 1,000 bootstrap means, which is random and differs from the mean by sampling
noise), and the Porter stemmer is on. With several references an example is scored best-of (`rouge_score`'s
`score_multi`) and, as `rouge*_mean`, by the mean over its references. rougeLsum splits sentences on newlines.

A metric that has a score per example also registers that form with `@per_example(name)`: (predictions,
references) -> {key: one score per row}. predictions.jsonl keeps them, and `peftlab compare` resamples them to
say whether two arms differ. Macro-F1 has none: it is a property of the whole split, not of one row."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import sacrebleu
from rouge_score import rouge_scorer

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")

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


@metric("rouge")
def rouge(predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    """ROUGE-1/2/L/Lsum F1 in 0..1. With several references per example, `rouge*` is best-of and `rouge*_mean`
    the mean over references, so both aggregations are on record."""
    return {key: sum(rows) / len(rows) if rows else 0.0 for key, rows in rouge_rows(predictions, references).items()}


@per_example("rouge")
def rouge_rows(predictions: list[str], references: list[list[str]]) -> dict[str, list[float]]:
    """Each row's ROUGE F1 (`rouge` is their mean)."""
    scorer = rouge_scorer.RougeScorer(rouge_types=list(ROUGE_TYPES), use_stemmer=True)
    rows: dict[str, list[float]] = {t: [] for t in ROUGE_TYPES}
    several = any(len(refs) > 1 for refs in references)
    rows |= {f"{t}_mean": [] for t in ROUGE_TYPES} if several else {}
    for prediction, refs in zip(predictions, references, strict=True):
        for t, score in scorer.score_multi(list(refs), prediction).items():
            rows[t].append(score.fmeasure)
        if several:
            each = [scorer.score(ref, prediction) for ref in refs]
            for t in ROUGE_TYPES:
                rows[f"{t}_mean"].append(sum(s[t].fmeasure for s in each) / len(each))
    return rows


@metric("bleu")
def bleu(predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    """Corpus BLEU (sacrebleu, 0..100) over every reference, as corpus BLEU does. sacrebleu wants one stream per
    reference position: a row with fewer references repeats its first."""
    streams = [[refs[i] if i < len(refs) else refs[0] for refs in references] for i in range(max(map(len, references)))]
    return {"bleu": sacrebleu.corpus_bleu(predictions, streams).score}


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
