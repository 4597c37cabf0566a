"""The study's control arms (sweeps/studies/control_lora.py). The control is independent of the framework: it imports
nothing from `research`, and its metric code agrees with `rouge_score` called by hand and with the framework's
`research.metrics` on the same strings (the cross-check lives here, not in the control). End to end in seconds: the
real SmolLM2 tokenizer and DialogSum rows from the offline assets, with a tiny Llama built in memory in place of the
135M model, so the whole loop (encode, zero-shot, train, generate, score, run.json, predictions.jsonl) runs and
compare reads its record, paired with the framework's rows of the same dialogues."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from rouge_score import rouge_scorer
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from research import metrics
from research.compare import load_records
from research.runs.predictions import read_predictions
from research.study.spec import load
from tests.helpers import CONF, DIALOGSUM, ROOT, SMOLLM2, SMOLLM2_GGUF, cli_env, datamodule, needs_assets

SCRIPT = ROOT / "sweeps" / "studies" / "control_lora.py"
assets = needs_assets(SMOLLM2 / SMOLLM2_GGUF, DIALOGSUM)
PREDICTIONS = ["They slept all day.\nThe cats sat on the mats.", "#Person1# asks about the bill.", ""]
REFERENCES = [
    ["A cat sat on a mat. It slept all day.", "Two cats sleep on mats.", "The cat slept."],
    ["#Person1# asks #Person2# about the bill.", "They talk about money.", "#Person2# pays the bill."],
    ["#Person1# and #Person2# talk.", "A talk.", "Nothing happens."],
]


@pytest.fixture(scope="module")
def control():
    spec = importlib.util.spec_from_file_location("control_lora", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(SMOLLM2, gguf_file=SMOLLM2_GGUF)


def test_the_control_imports_nothing_from_research():
    """In a fresh interpreter where `research` is importable: loading the script and parsing its arguments
    leaves no `research` module behind (any import of the framework, however indirect, would)."""
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('control_lora', {str(SCRIPT)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "module.parse_args(['--out', 'x'])\n"
        "found = sorted(m for m in sys.modules if m.split('.')[0] == 'research')\n"
        "import research  # importable here, so its absence above is the script's doing\n"
        "print(found)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=cli_env(), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def tiny_llama(tokenizer) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


def tiny_args(out: Path, *extra: str) -> list[str]:
    return [
        "--out", str(out), "--model", str(SMOLLM2), "--data", str(DIALOGSUM), "--steps", "3", "--train-examples", "6",
        "--batch-size", "4", "--test-examples", "3", "--eval-batch-size", "2", "--max-new-tokens", "4",
        "--max-source-length", "128", "--lr", "5e-2", "--log-every", "0", *extra,
    ]  # fmt: skip


@assets
def test_prompt_keeps_the_dialogue_start_and_labels_only_the_target(control, tokenizer):
    dialogue = " ".join(f"#Person1#: sentence {i}." for i in range(200))
    ids, cut = control.encode_prompt(tokenizer, dialogue, 96)
    text = tokenizer.decode(ids)
    assert cut and len(ids) <= 96
    assert "sentence 0." in text and "sentence 199." not in text  # the END is what goes
    assert text.endswith("\n\nSummary:<|im_end|>\n<|im_start|>assistant\n")
    target = control.encode_target(tokenizer, "A long summary " * 50, 8)
    assert len(target) == 8 and target[-1] == tokenizer.eos_token_id
    batch = control.collate_train([{"prompt": [5, 6, 7], "target": [8, 2]}, {"prompt": [5], "target": [2]}], pad_id=2)
    assert batch["labels"].tolist() == [[-100, -100, -100, 8, 2], [-100, 2, -100, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]


def test_the_control_scores_as_rouge_score_by_hand_and_as_the_framework(control):
    """A metric bug on either side shows here: the control's ROUGE is `rouge_score`'s F-measure, best of the
    references, mean over examples; and the framework's metric code gives the same numbers, per example too."""
    rows = control.example_scores(PREDICTIONS, REFERENCES)
    scores = control.split_scores(rows, PREDICTIONS, REFERENCES)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    for key in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        pairs = zip(PREDICTIONS, REFERENCES, strict=True)
        by_hand = [max(scorer.score(r, p)[key].fmeasure for r in refs) for p, refs in pairs]
        assert [row[key] for row in rows] == pytest.approx(by_hand)
        assert scores[key] == pytest.approx(sum(by_hand) / len(by_hand))
    assert rows[0]["rougeLsum"] != rows[0]["rougeL"]  # a newline ends a sentence: rougeLsum is not rougeL
    assert rows[1]["rouge1"] > rows[1]["rouge1_mean"] > 0 and rows[2]["rouge1"] == 0.0

    framework = metrics.score(("rouge", "bleu"), PREDICTIONS, REFERENCES)
    assert scores.keys() == framework.keys() and scores == pytest.approx(framework)
    assert rows == [pytest.approx(row) for row in metrics.example_scores(("rouge", "bleu"), PREDICTIONS, REFERENCES)]


def test_the_plain_schedule_warms_up_then_holds_and_the_stock_one_decays(control):
    def rates(*argv: str) -> list[float]:
        args = control.parse_args(["--out", "x", "--lr", "1.0", "--steps", "20", *argv])
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=args.lr)
        schedule = control.learning_rates(optimizer, args)
        seen = []
        for _ in range(args.steps):
            seen.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            schedule.step()
        return seen

    assert rates("--schedule", "constant") == pytest.approx([i / 10 for i in range(10)] + [1.0] * 10)
    assert rates() == pytest.approx([1 - i / 20 for i in range(20)])  # linear, no warm-up: HF Trainer's stock
    assert rates("--warmup-steps", "2")[:3] == pytest.approx([0.0, 0.5, 1.0])


def test_the_study_runs_the_control_with_the_frameworks_budget_and_with_the_plain_recipe(control):
    """Each control arm's command, as the study fills it in, is one the script takes."""
    study = load(str(CONF / "study" / "dialogsum_smollm2.yaml"))
    args = {}
    for name in ("control", "control_plain"):
        words = [w.format(python=sys.executable, out="out", seed=1, lr=1e-3) for w in study.arm(name).command]
        assert words[1] == "sweeps/studies/control_lora.py" and study.arm(name).lr_from == "lora"
        args[name] = vars(control.parse_args(words[2:]))
    keys = ("schedule", "warmup_steps", "max_new_tokens")
    assert [args["control"][k] for k in keys] == ["linear", 0, 40]  # as the framework's experiment, bar warm-up
    assert [args["control_plain"][k] for k in keys] == ["constant", 10, 60]
    assert {k for k in args["control"] if args["control"][k] != args["control_plain"][k]} == set(keys)


@assets
def test_control_run_writes_a_record_and_predictions_compare_pairs_with_the_frameworks(
    control, tokenizer, tmp_path, monkeypatch, capsys
):
    model = tiny_llama(tokenizer)
    monkeypatch.setattr(control, "load", lambda args: (tokenizer, model))
    assert control.main(tiny_args(tmp_path, "--zero-shot", "--schedule", "constant", "--warmup-steps", "1")) == 0
    assert capsys.readouterr().out.startswith("lora_control seed 1: test/rouge1")

    (record,) = load_records([tmp_path])
    assert record["status"] == "completed" and record["method"] == "lora_control" and record["seed"] == 1
    assert {"test/rouge1", "test/rougeLsum", "test/rouge1_mean", "test/bleu", "zero_shot/rougeL", "train/loss"} <= (
        record["metrics"].keys()
    )
    assert {"train_s", "test_eval_s", "zero_shot_eval_s"} <= record["timing"].keys()
    assert record["memory"]["peak_rss_mb"] > 0 and record["memory"]["model_bytes"] > 0
    config = record["config"]
    assert config["method"] == {"name": "lora_control", "lr": 0.05, "peft_config": config["method"]["peft_config"]}
    assert config["scheduler"]["name"] == "constant_with_warmup" and config["trainer"]["max_steps"] == 3
    assert 0 < record["params"]["trainable"] < record["params"]["total"]
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b)  # the adapter the test split used was trained

    rows = read_predictions(tmp_path, "test")
    assert [r["id"] for r in rows] == [0, 1, 2] and len(read_predictions(tmp_path, "zero_shot")) == 3
    assert record["metrics"]["test/rougeL"] == pytest.approx(sum(r["scores"]["rougeL"] for r in rows) / 3)
    assert all(r["input"].endswith("Summary:\nassistant\n") for r in rows)
    # compare pairs rows by id and refuses ids whose references differ: these are the framework's rows
    dm = datamodule("experiment=dialogsum_smollm2", f"data.path={DIALOGSUM}", "data.test_limit=3")
    dm.setup()
    assert [r["references"] for r in rows] == dm.splits["test"]["references"]
    examples = [json.loads(line) for line in (tmp_path / "examples.jsonl").read_text().splitlines()]
    assert [e["stage"] for e in examples] == ["zero_shot"] * 3 + ["test"] * 3


@assets
def test_a_missing_data_file_is_one_line_and_exit_1(control, tmp_path, capsys):
    assert control.main(tiny_args(tmp_path / "run", "--data", str(tmp_path))) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(tmp_path / "dialogsum.train.jsonl") in err
    assert not (tmp_path / "run").exists()
