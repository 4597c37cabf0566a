"""ROUGE is Google's rouge_score (what the hub's `rouge` metric wraps) with the mean as aggregate; per-example scores."""

from __future__ import annotations

import pytest
from rouge_score import rouge_scorer, scoring
from sacrebleu import corpus_bleu, sentence_bleu

from research.metrics import bleu, example_scores, rouge, rouge_rows
from research.tasks import Task

PREDICTIONS = ["the cats were sitting on the mat", "he is running to the station\nthen he left", "hello"]
REFERENCES = [["a cat sat on the mat"], ["he ran to the station\nand left"], ["goodbye"]]
TYPES = ["rouge1", "rouge2", "rougeL", "rougeLsum"]


def test_per_example_scores_equal_rouge_score_with_stemming():
    ours = rouge_rows(PREDICTIONS, REFERENCES)
    scorer = rouge_scorer.RougeScorer(TYPES, use_stemmer=True)
    for i, (p, (r,)) in enumerate(zip(PREDICTIONS, REFERENCES, strict=True)):
        expected = scorer.score(r, p)
        for t in TYPES:
            assert ours[t][i] == expected[t].fmeasure  # exact: same library, same tokenizer, same stemmer


def test_aggregate_is_the_mean_and_agrees_with_the_hub_bootstrap():
    """The hub aggregates with rouge_score's BootstrapAggregator (median of bootstrap means): random.
    We report the exact mean; the bootstrap's mid must agree with it to sampling noise."""
    ours = rouge(PREDICTIONS, REFERENCES)
    scorer = rouge_scorer.RougeScorer(TYPES, use_stemmer=True)
    per = [scorer.score(r, p) for p, (r,) in zip(PREDICTIONS, REFERENCES, strict=True)]
    aggregator = scoring.BootstrapAggregator()
    for s in per:
        aggregator.add_scores(s)
    hub = aggregator.aggregate()
    for t in TYPES:
        assert ours[t] == pytest.approx(sum(s[t].fmeasure for s in per) / len(per), abs=1e-12)
        assert ours[t] == pytest.approx(hub[t].mid.fmeasure, abs=0.05)


def test_rouge_lsum_splits_sentences_on_newlines():
    scores = rouge(["c d\na b"], [["a b\nc d"]])
    assert scores["rougeLsum"] == 1.0 and scores["rougeL"] < 1.0


def test_single_reference_has_no_mean_variant():
    assert set(Task.SEQ2SEQ.score(["a b"], [["a b"]])) == {*TYPES, "bleu"}


def test_classification_accuracy_and_macro_f1():
    m = Task.CLASSIFICATION.score([1, 1, 0, 0], [1, 0, 0, 0])
    assert m["accuracy"] == 0.75
    assert m["f1"] == pytest.approx((2 / 3 + 0.8) / 2)  # class 1: P=1/2 R=1; class 0: P=1 R=2/3


def test_bleu_is_corpus_bleu_over_every_reference():
    """A row with fewer references repeats its first: sacrebleu takes one stream per reference position."""
    assert bleu(["a b c d"], [["a b c d"]])["bleu"] == pytest.approx(100)
    predictions, references = ["a b c d e", "x y z w v"], [["a b c d f", "a b c d e"], ["x y z w v"]]
    streams = [["a b c d f", "x y z w v"], ["a b c d e", "x y z w v"]]
    assert bleu(predictions, references)["bleu"] == corpus_bleu(predictions, streams).score == pytest.approx(100)


def test_per_example_scores_average_to_the_split_scores_but_bleu_and_f1():
    """ROUGE and accuracy per row average to the split's score; BLEU per row is sentence BLEU (its mean is not corpus
    BLEU); macro-F1 has no per-row form."""
    rows = example_scores(Task.SEQ2SEQ.metrics, PREDICTIONS, REFERENCES)
    split = Task.SEQ2SEQ.score(PREDICTIONS, REFERENCES)
    assert [set(row) for row in rows] == [{*TYPES, "bleu"}] * len(PREDICTIONS)
    for t in TYPES:
        assert sum(row[t] for row in rows) / len(rows) == split[t]
    assert [row["bleu"] for row in rows] == [
        sentence_bleu(p, r).score for p, r in zip(PREDICTIONS, REFERENCES, strict=True)
    ]
    assert example_scores(Task.CLASSIFICATION.metrics, [1, 0, 2], [1, 1, 2]) == [
        {"accuracy": 1.0},
        {"accuracy": 0.0},
        {"accuracy": 1.0},
    ]


def test_several_references_score_each_row_both_ways():
    rows = example_scores(["rouge"], ["a b"], [["a b", "c d"]])
    assert rows == [{**dict.fromkeys(TYPES, 1.0), **{f"{t}_mean": 0.5 for t in TYPES}}]
