"""Control arm: LoRA on SmolLM2-135M-Instruct / DialogSum in a plain PyTorch + peft loop, written the way a
typical user writes one, so that comparing it with the framework's own LoRA run (experiment=dialogsum_smollm2)
shows whether the framework's protocol costs or gains quality.

Deliberately done the stock way (not through the framework's Lightning module, data module, templates or
generation code):
- the prompt is the model's chat template around ONE fixed instruction (no template rotation);
- a prompt over --max-source-length loses the END of its dialogue (the framework cuts the middle);
- the learning rate decays linearly from the start, without warm-up (HF Trainer's stock schedule);
- the loss is the model's own `labels=` loss over the full vocabulary.

Kept the same as the framework's run, so only the protocol differs: LoRA hyperparameters (r, alpha,
dropout, peft's default target modules), the optimizer and its budget (steps, batch size, learning rate,
clipping), the training and test examples, the generation length (greedy), and the metric code
(`research.metrics.score` with ROUGE and BLEU, as the framework scores generation). It writes `run.json`
with the framework's record class, so `python -m research.compare` reads it beside the framework's runs, and `examples.jsonl` with every prediction.

    python sweeps/studies/control_lora.py --out outputs/studies/control/lora_control/seed1 [--seed 2] [--zero-shot]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, get_peft_model
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedTokenizerBase,
    get_linear_schedule_with_warmup,
)

from research import metrics
from research.methods.base import count_parameters
from research.runs import memory
from research.runs.record import RunRecord

INSTRUCTION = "Summarize the following conversation.\n\n{dialogue}\n\nSummary:"
TRAIN_FILE, TEST_FILE = "dialogsum.train.jsonl", "dialogsum.test.jsonl"
REFERENCE_FIELDS = ("summary1", "summary2", "summary3")
IGNORE = -100  # label of a position the loss skips (prompt, padding)
Example = dict[str, Any]  # prompt ids, target ids, references


class UsageError(Exception):
    """Bad input from the command line or the files it names: reported as one line, exit status 1."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", required=True, type=Path, help="run folder: run.json and examples.jsonl")
    p.add_argument("--model", default="../shared/assets/models/smollm2-135m-instruct-gguf")
    p.add_argument("--gguf-file", default="SmolLM2-135M-Instruct.Q4_1.gguf", help="'' for a plain HF folder or hub id")
    p.add_argument("--data", default="../shared/assets/data/dialogsum", type=Path)
    p.add_argument("--train-examples", type=int, default=320, help="the first N training rows")
    p.add_argument("--test-examples", type=int, default=100, help="the first N test dialogues")
    p.add_argument("--steps", type=int, default=40, help="optimizer steps")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--eval-batch-size", type=int, default=20)
    p.add_argument("--max-source-length", type=int, default=384, help="prompt tokens (the dialogue's end is cut)")
    p.add_argument("--max-target-length", type=int, default=64, help="summary tokens, end-of-sequence included")
    p.add_argument("--max-new-tokens", type=int, default=40)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=int, default=16, help="LoRA scale is alpha / rank")
    p.add_argument("--dropout", type=float, default=0.05)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--zero-shot", action="store_true", help="also score the untouched base (zero_shot/*)")
    p.add_argument("--device", default="auto", help="auto (cuda when present) | cpu | cuda | cuda:N")
    p.add_argument("--log-every", type=int, default=10, help="print the loss every N steps (0: never)")
    return p.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """Fail before anything loads, naming what is wrong."""
    positive = ("train_examples", "test_examples", "steps", "batch_size", "eval_batch_size")
    positive += ("max_source_length", "max_target_length", "max_new_tokens", "rank")
    for name in positive:
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if not 0 <= args.dropout < 1 or args.lr <= 0 or args.log_every < 0:
        raise UsageError("--dropout must be in [0, 1), --lr above 0 and --log-every at least 0")
    for file in (args.data / TRAIN_FILE, args.data / TEST_FILE):
        if not file.is_file():
            raise UsageError(f"data file not found: {file}")
    if args.gguf_file and not (Path(args.model) / args.gguf_file).is_file():
        raise UsageError(f"model file not found: {Path(args.model) / args.gguf_file}")
    if args.device != "auto":
        try:
            torch.device(args.device)
        except RuntimeError as err:
            raise UsageError(f"--device {args.device!r}: {err}") from err
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out is not a folder: {args.out}")


def read_jsonl(path: Path, fields: tuple[str, ...], limit: int) -> list[dict[str, str]]:
    """The first `limit` rows; a row that is not JSON or lacks a field is an error naming its line."""
    rows = []
    with path.open() as fh:
        for number, line in enumerate(fh, 1):
            if len(rows) == limit:
                break
            try:
                row = json.loads(line)
                rows.append({f: str(row[f]) for f in fields})
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise UsageError(f"{path}:{number}: not a JSON object with fields {', '.join(fields)} ({err})") from err
    if not rows:
        raise UsageError(f"no rows in {path}")
    return rows


def load(args: argparse.Namespace) -> tuple[PreTrainedTokenizerBase, nn.Module]:
    """Tokenizer and float32 model, from the GGUF file (de-quantized by transformers) or a plain folder."""
    kwargs = {"gguf_file": args.gguf_file} if args.gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(args.model, **kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32, **kwargs)
    return tokenizer, model


def render(tokenizer: PreTrainedTokenizerBase, dialogue: str) -> str:
    """The instruction as one user turn; the string ends where the assistant's answer starts."""
    turn = [{"role": "user", "content": INSTRUCTION.format(dialogue=dialogue)}]
    return tokenizer.apply_chat_template(turn, tokenize=False, add_generation_prompt=True)


def encode_prompt(tokenizer: PreTrainedTokenizerBase, dialogue: str, max_length: int) -> tuple[list[int], bool]:
    """Prompt ids of at most `max_length` tokens, and whether the dialogue was cut: a prompt too long keeps
    the dialogue's first tokens that fit (re-tokenizing the cut text can shift a token, hence the loop)."""
    ids = tokenizer(render(tokenizer, dialogue), add_special_tokens=False).input_ids
    if len(ids) <= max_length:
        return ids, False
    dialogue_ids = tokenizer(dialogue, add_special_tokens=False).input_ids
    keep = len(dialogue_ids) - (len(ids) - max_length)
    while keep > 0:
        ids = tokenizer(render(tokenizer, tokenizer.decode(dialogue_ids[:keep])), add_special_tokens=False).input_ids
        if len(ids) <= max_length:
            return ids, True
        keep -= len(ids) - max_length
    raise UsageError(f"--max-source-length {max_length} leaves no room for the dialogue next to the prompt")


def encode_target(tokenizer: PreTrainedTokenizerBase, summary: str, max_length: int) -> list[int]:
    """Summary tokens then end-of-sequence, so the model learns to stop; the prompt already ends in a newline."""
    ids = tokenizer(summary, add_special_tokens=False).input_ids[: max_length - 1]
    return [*ids, tokenizer.eos_token_id]


def encode(
    tokenizer: PreTrainedTokenizerBase, rows: list[dict[str, str]], args: argparse.Namespace, train: bool
) -> tuple[list[Example], int]:
    """Examples and how many prompts were cut."""
    examples, cut = [], 0
    for row in rows:
        prompt, truncated = encode_prompt(tokenizer, row["dialogue"], args.max_source_length)
        cut += truncated
        if train:
            examples.append(
                {"prompt": prompt, "target": encode_target(tokenizer, row["summary"], args.max_target_length)}
            )
        else:
            examples.append({"prompt": prompt, "references": [row[f] for f in REFERENCE_FIELDS]})
    return examples, cut


def batches(examples: list[Example], batch_size: int, steps: int, seed: int) -> Iterator[list[Example]]:
    """`steps` batches; every epoch is a fresh permutation drawn from one seeded generator (a shuffling
    DataLoader's behaviour; the last batch of an epoch may be smaller)."""
    generator = torch.Generator().manual_seed(seed)
    done = 0
    while True:
        order = torch.randperm(len(examples), generator=generator).tolist()
        for start in range(0, len(order), batch_size):
            yield [examples[i] for i in order[start : start + batch_size]]
            done += 1
            if done == steps:
                return


def collate_train(batch: list[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Prompt + target, right-padded; labels only on the target (its end-of-sequence included)."""
    width = max(len(e["prompt"]) + len(e["target"]) for e in batch)
    input_ids, attention, labels = [], [], []
    for e in batch:
        ids = e["prompt"] + e["target"]
        pad = width - len(ids)
        input_ids.append(ids + [pad_id] * pad)
        attention.append([1] * len(ids) + [0] * pad)
        labels.append([IGNORE] * len(e["prompt"]) + e["target"] + [IGNORE] * pad)
    return {
        "input_ids": torch.tensor(input_ids),
        "attention_mask": torch.tensor(attention),
        "labels": torch.tensor(labels),
    }


def train(
    model: nn.Module, examples: list[Example], args: argparse.Namespace, pad_id: int, device: torch.device
) -> tuple[list[float], int]:
    """AdamW, linear decay to zero without warm-up, gradients clipped at 1.0. Losses per step, and the
    non-padding tokens trained on (for tokens/s)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.0)
    schedule = get_linear_schedule_with_warmup(optimizer, 0, args.steps)
    model.train()
    losses, tokens = [], 0
    for step, batch in enumerate(batches(examples, args.batch_size, args.steps, args.seed), 1):
        inputs = {k: v.to(device) for k, v in collate_train(batch, pad_id).items()}
        loss = model(**inputs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        tokens += int(inputs["attention_mask"].sum())
        if args.log_every and (step % args.log_every == 0 or step == args.steps):
            print(f"step {step}/{args.steps}  loss {losses[-1]:.4f}", file=sys.stderr, flush=True)
    return losses, tokens


@torch.no_grad()
def generate(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    examples: list[Example],
    args: argparse.Namespace,
    device: torch.device,
) -> list[str]:
    """Greedy continuations of left-padded prompts, in the examples' order; only the new tokens decoded."""
    model.eval()
    tokenizer.padding_side = "left"
    predictions = []
    for start in range(0, len(examples), args.eval_batch_size):
        chunk = examples[start : start + args.eval_batch_size]
        inputs = tokenizer.pad({"input_ids": [e["prompt"] for e in chunk]}, return_tensors="pt").to(device)
        out = model.generate(
            **inputs,
            max_new_tokens=args.max_new_tokens,
            do_sample=False,
            num_beams=1,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        new = out[:, inputs["input_ids"].shape[1] :]
        predictions += [text.strip() for text in tokenizer.batch_decode(new, skip_special_tokens=True)]
    return predictions


def score(
    stage: str,
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    test: list[Example],
    args: argparse.Namespace,
    device: torch.device,
    record: RunRecord,
) -> list[str]:
    """Generate on the test dialogues and score with the framework's metric code, as `<stage>/<name>`."""
    started = time.perf_counter()
    predictions = generate(model, tokenizer, test, args, device)
    scores = metrics.score(("rouge", "bleu"), predictions, [e["references"] for e in test])
    record.metrics |= {f"{stage}/{k}": float(v) for k, v in scores.items()}
    record.timing[f"{stage}_eval_s"] = time.perf_counter() - started
    return predictions


def build_config(args: argparse.Namespace) -> dict[str, Any]:
    """Every CLI value once, under the framework's config key where one means the same (so compare's
    columns line up with the framework's runs), else under `control`."""
    return {
        "seed": args.seed,
        "train": True,
        "test": True,
        "zero_shot": args.zero_shot,
        "method": {
            "name": "lora_control",
            "lr": args.lr,
            "peft_config": {
                "r": args.rank,
                "lora_alpha": args.alpha,
                "lora_dropout": args.dropout,
                "target_modules": None,
            },
        },
        "model": {
            "name": "smollm2_135m",
            "name_or_path": args.model,
            "gguf_file": args.gguf_file or None,
            "dtype": "float32",
            "chat_template": True,
        },
        "data": {
            "name": "dialogsum",
            "path": str(args.data),
            "train_limit": args.train_examples,
            "test_limit": args.test_examples,
            "max_source_length": args.max_source_length,
            "max_target_length": args.max_target_length,
            "batch_size": args.batch_size,
            "eval_batch_size": args.eval_batch_size,
        },
        "optimizer": {"weight_decay": 0.0, "betas": [0.9, 0.999], "eps": 1e-08},
        "scheduler": {"name": "linear", "warmup_ratio": 0.0, "warmup_steps": 0},
        "trainer": {"max_steps": args.steps, "gradient_clip_val": 1.0},
        "generation": {"max_new_tokens": args.max_new_tokens, "num_beams": 1, "do_sample": False},
        "control": {
            "instruction": INSTRUCTION,
            "truncation": "dialogue_end",
            "loss": "model_labels_full_vocabulary",
            "device": args.device,
            "log_every": args.log_every,
        },
        "paths": {"output_dir": str(args.out)},
    }


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def run(args: argparse.Namespace) -> RunRecord:
    """Read and encode the data, then load, (score the base), train and score, recorded in run.json."""
    train_rows = read_jsonl(args.data / TRAIN_FILE, ("dialogue", "summary"), args.train_examples)
    test_rows = read_jsonl(args.data / TEST_FILE, ("dialogue", *REFERENCE_FIELDS), args.test_examples)
    device = pick_device(args.device)
    record = RunRecord.start(build_config(args), "lora_control", "smollm2_135m", "dialogsum")
    memory.reset_peak()
    with record.recorded(args.out):
        torch.manual_seed(args.seed)
        tokenizer, model = load(args)
        model.to(device)
        train_set, train_cut = encode(tokenizer, train_rows, args, train=True)
        test_set, test_cut = encode(tokenizer, test_rows, args, train=False)
        record.artifacts["truncated_inputs"] = {"train": train_cut, "test": test_cut}
        record.artifacts["examples"] = {"train": len(train_set), "test": len(test_set)}
        if args.zero_shot:
            score("zero_shot", model, tokenizer, test_set, args, device, record)
        peft_config = LoraConfig(
            task_type="CAUSAL_LM", r=args.rank, lora_alpha=args.alpha, lora_dropout=args.dropout, target_modules=None
        )
        model = get_peft_model(model, peft_config)
        record.params = count_parameters(model)
        record.artifacts["injected"] = {
            "peft_type": "LORA",
            "target_modules": sorted(model.peft_config["default"].target_modules),
        }
        started = time.perf_counter()
        losses, tokens = train(model, train_set, args, tokenizer.pad_token_id, device)
        record.timing["train_s"] = time.perf_counter() - started
        record.timing["train_tokens_per_s"] = tokens / record.timing["train_s"]
        record.metrics["train/loss"] = sum(losses[-5:]) / len(losses[-5:])  # mean of the last 5 steps
        predictions = score("test", model, tokenizer, test_set, args, device, record)
        write_examples(args.out / "examples.jsonl", predictions, test_set)
        record.artifacts["examples_file"] = str(args.out / "examples.jsonl")
        record.memory = memory.peak() | memory.model_bytes(model)
    return record


def write_examples(path: Path, predictions: list[str], test: list[Example]) -> None:
    """One line per test dialogue, to read the predictions beside their references."""
    lines = [
        json.dumps({"index": i, "prediction": p, "references": e["references"]})
        for i, (p, e) in enumerate(zip(predictions, test, strict=True))
    ]
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_args(args)
        record = run(args)
    except (UsageError, OSError) as err:  # a failure after the record started is in run.json too
        print(f"control_lora: error: {err}", file=sys.stderr)
        return 1
    m = record.metrics
    print(
        f"lora_control seed {args.seed}: test/rouge1 {m['test/rouge1']:.4f} rougeL {m['test/rougeL']:.4f} "
        f"bleu {m['test/bleu']:.2f} train/loss {m['train/loss']:.4f} in {record.timing['train_s']:.0f}s "
        f"-> {args.out / 'run.json'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
