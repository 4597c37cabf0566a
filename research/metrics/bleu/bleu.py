"""Corpus BLEU (sacrebleu) as an `evaluate` metric module shipped with the package (loads offline)."""

import datasets
import evaluate
import sacrebleu


class Bleu(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="Corpus BLEU from sacrebleu, 0..100; several references per example allowed.",
            citation="Post, A Call for Clarity in Reporting BLEU Scores, WMT 2018.",
            inputs_description="predictions: list of str; references: list of list of str.",
            features=datasets.Features(
                {
                    "predictions": datasets.Value("string"),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
        )

    def _compute(self, predictions, references):
        n_refs = max(len(r) for r in references)
        # sacrebleu wants one stream per reference position; pad short lists with their first reference.
        streams = [[refs[i] if i < len(refs) else refs[0] for refs in references] for i in range(n_refs)]
        return {"bleu": sacrebleu.corpus_bleu(predictions, streams).score}
