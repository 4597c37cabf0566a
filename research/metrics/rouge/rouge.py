"""ROUGE as an `evaluate` metric module shipped with the package, so it loads offline by path.

Scores come from Google's `rouge_score` (the same library the hub's `rouge` metric wraps), with the
Porter stemmer on by default. Two deliberate choices, documented in the README:
- aggregation is the arithmetic mean of per-example F1 (deterministic); the hub's aggregator reports
  the median of 1,000 bootstrap means, which is random and differs from the mean by sampling noise;
- several references per example are scored `multi_ref="max"` (best-of, as `rouge_score.score_multi`)
  or `"mean"` (the mean over references).
"""

import datasets
import evaluate
from rouge_score import rouge_scorer

_DESCRIPTION = "ROUGE-1/2/L/Lsum F-measure (rouge_score), mean over examples; rougeLsum splits sentences on newlines."
_KWARGS = """
predictions: list of str. references: list of str, or list of list of str (several references).
rouge_types: default ["rouge1", "rouge2", "rougeL", "rougeLsum"]. use_stemmer: default True.
use_aggregator: True gives the mean F1 per type, False the per-example F1 lists.
multi_ref: "max" (best-of) or "mean" when an example has several references.
"""


class Rouge(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Lin, ROUGE: A Package for Automatic Evaluation of Summaries, 2004.",
            inputs_description=_KWARGS,
            features=[
                datasets.Features(
                    {
                        "predictions": datasets.Value("string"),
                        "references": datasets.Sequence(datasets.Value("string")),
                    }
                ),
                datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
            ],
        )

    def _compute(
        self,
        predictions,
        references,
        rouge_types=None,
        use_aggregator=True,
        use_stemmer=True,
        multi_ref="max",
    ):
        if multi_ref not in ("max", "mean"):
            raise ValueError(f"multi_ref={multi_ref!r}; allowed: 'max', 'mean'")
        rouge_types = rouge_types or ["rouge1", "rouge2", "rougeL", "rougeLsum"]
        scorer = rouge_scorer.RougeScorer(rouge_types=rouge_types, use_stemmer=use_stemmer)
        per_example = {t: [] for t in rouge_types}
        for prediction, refs in zip(predictions, references, strict=True):
            refs = [refs] if isinstance(refs, str) else list(refs)
            if multi_ref == "max":
                scores = {t: s.fmeasure for t, s in scorer.score_multi(refs, prediction).items()}
            else:
                each = [scorer.score(ref, prediction) for ref in refs]
                scores = {t: sum(s[t].fmeasure for s in each) / len(each) for t in rouge_types}
            for t in rouge_types:
                per_example[t].append(scores[t])
        if not use_aggregator:
            return per_example
        return {t: sum(v) / len(v) if v else 0.0 for t, v in per_example.items()}
