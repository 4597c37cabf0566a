"""The study's control arm (sweeps/studies/control_lora.py), end to end in seconds: the real SmolLM2 tokenizer
and DialogSum rows from the offline assets, with a tiny Llama built in memory in place of the 135M model,
so the whole loop (encode, zero-shot, train, generate, score, run.json) runs and compare reads its record."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from research.compare import load_records
from tests.helpers import DIALOGSUM, ROOT, SMOLLM2, SMOLLM2_GGUF, needs_assets

SCRIPT = ROOT / "sweeps" / "studies" / "control_lora.py"
pytestmark = needs_assets(SMOLLM2 / SMOLLM2_GGUF, DIALOGSUM)


@pytest.fixture(scope="module")
def control():
    spec = importlib.util.spec_from_file_location("control_lora", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(SMOLLM2, gguf_file=SMOLLM2_GGUF)


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


def test_control_run_writes_a_record_compare_reads(control, tokenizer, tmp_path, monkeypatch, capsys):
    model = tiny_llama(tokenizer)
    monkeypatch.setattr(control, "load", lambda args: (tokenizer, model))
    assert control.main(tiny_args(tmp_path, "--zero-shot")) == 0
    assert capsys.readouterr().out.startswith("lora_control seed 1: test/rouge1")

    (record,) = load_records([tmp_path])
    assert record["status"] == "completed" and record["method"] == "lora_control"
    assert {"test/rouge1", "test/rougeL", "test/bleu", "zero_shot/rouge1", "train/loss"} <= record["metrics"].keys()
    assert {"train_s", "test_eval_s", "zero_shot_eval_s"} <= record["timing"].keys()
    assert record["config"]["method"]["peft_config"]["r"] == 8 and record["config"]["trainer"]["max_steps"] == 3
    assert 0 < record["params"]["trainable"] < record["params"]["total"]
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b)  # the adapter the test split used was trained
    rows = [json.loads(line) for line in (tmp_path / "examples.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == [0, 1, 2] and all(len(r["references"]) == 3 for r in rows)


def test_a_missing_data_file_is_one_line_and_exit_1(control, tmp_path, capsys):
    assert control.main(tiny_args(tmp_path / "run", "--data", str(tmp_path))) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(tmp_path / "dialogsum.train.jsonl") in err
    assert not (tmp_path / "run").exists()
