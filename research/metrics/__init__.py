"""Metrics: evaluate modules shipped in this package (offline), hub metrics by name when online."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import evaluate

LOCAL = Path(__file__).parent


@cache
def load_metric(name: str) -> evaluate.EvaluationModule:
    """`rouge` and `bleu` load from this package by path (no hub); any other name goes to the hub."""
    local = LOCAL / name / f"{name}.py"
    return evaluate.load(str(local) if local.exists() else name)


def generation_metrics(predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    """ROUGE-1/2/L/Lsum F1 in 0..1 and corpus BLEU (sacrebleu, 0..100). With several references per
    example, `rouge*` is best-of and `rouge*_mean` the mean over references, so both aggregations are on
    record; BLEU uses every reference, as corpus BLEU does."""
    rouge = load_metric("rouge")
    scores = rouge.compute(predictions=predictions, references=references, multi_ref="max")
    if any(len(refs) > 1 for refs in references):
        mean = rouge.compute(predictions=predictions, references=references, multi_ref="mean")
        scores.update({f"{k}_mean": v for k, v in mean.items()})
    scores.update(load_metric("bleu").compute(predictions=predictions, references=references))
    return scores


def classification_metrics(predictions: list[int], labels: list[int]) -> dict[str, float]:
    """Accuracy and macro-F1 (equal to the positive-class F1 averaged with the negative one)."""
    pairs = list(zip(predictions, labels, strict=True))
    accuracy = sum(p == y for p, y in pairs) / len(pairs)
    f1s = []
    for c in sorted(set(labels) | set(predictions)):
        tp = sum(p == c and y == c for p, y in pairs)
        fp = sum(p == c and y != c for p, y in pairs)
        fn = sum(p != c and y == c for p, y in pairs)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return {"accuracy": accuracy, "f1": sum(f1s) / len(f1s)}
