"""Control arm: LoRA on SmolLM2-135M-Instruct / DialogSum in a plain PyTorch + peft loop, written the way a
typical user writes one and independent of the framework (it imports nothing from `research`), so that
comparing it with the framework's own LoRA run (experiment=dialogsum_smollm2) shows whether the framework's
protocol costs or gains quality, and a bug in the framework's metric code shows as a disagreement.

Its own, not the framework's (so neither a framework bug nor a framework choice carries over):
- the metric code: `rouge_score` and `sacrebleu` called here, scored by the definition the framework states
  (F-measure with the Porter stemmer, the best of the references per example, the mean over examples;
  rougeLsum splits sentences on newlines only; corpus BLEU over the three reference streams);
- the prompt: the model's chat template around ONE fixed instruction (no template rotation), and a prompt over
  --max-source-length loses the END of its dialogue (the framework cuts the middle);
- the data order: each epoch's batches drawn by Python's `random` from --seed, not the framework's batches;
- the schedule: linear decay from the start without warm-up (HF Trainer's stock schedule), or with
  `--schedule constant` a constant rate after --warmup-steps of warm-up (the plain recipe);
- the loss: the model's own `labels=` loss over the full vocabulary;
- the record: `run.json` and `predictions.jsonl` written here as plain JSON.

Kept the same as the framework's run, so only the protocol differs: LoRA hyperparameters (r, alpha, dropout,
peft's default target modules), the optimizer and its budget (AdamW, steps, batch size, learning rate,
clipping), the training and test rows (the first N of each file), the instruction's wording (the framework's
first `summarize` template), greedy generation of --max-new-tokens (40, the experiment's), and the fields
`peftlab compare` reads: run.json's and predictions.jsonl's (`id` is the row's index in the test file, the
framework's id of that dialogue, so the Decided? table pairs the control's examples with the framework's).

    python sweeps/studies/control_lora.py --out outputs/studies/control/seed1 [--seed 2] [--zero-shot]
        [--schedule constant --max-new-tokens 60]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import sacrebleu
import torch
from peft import LoraConfig, get_peft_model
from rouge_score import rouge_scorer
from torch import nn
from torch.optim.lr_scheduler import LRScheduler
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase, get_scheduler

METHOD = "lora_control"
INSTRUCTION = "Summarize the following conversation.\n\n{dialogue}\n\nSummary:"
TRAIN_FILE, TEST_FILE = "dialogsum.train.jsonl", "dialogsum.test.jsonl"
REFERENCE_FIELDS = ("summary1", "summary2", "summary3")
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
SCHEDULES = {"linear": "linear", "constant": "constant_with_warmup"}  # --schedule -> transformers' name
WARMUP = {"linear": 0, "constant": 10}  # --warmup-steps when not given
NOT_HASHED = ("out", "device", "log_every")  # where and how loudly it runs: not what it computes
PACKAGES = ("torch", "transformers", "peft", "rouge-score", "sacrebleu")  # what the numbers depend on
IGNORE = -100  # label of a position the loss skips (prompt, padding)
Example = dict[str, Any]  # prompt ids, target ids, references
Record = dict[str, Any]  # run.json


class UsageError(Exception):
    """Bad input from the command line or the files it names: reported as one line, exit status 1."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", required=True, type=Path, help="run folder: run.json, predictions.jsonl, examples.jsonl")
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
    p.add_argument("--max-new-tokens", type=int, default=40, help="40: the framework experiment's; the plain recipe 60")
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=int, default=16, help="LoRA scale is alpha / rank")
    p.add_argument("--dropout", type=float, default=0.05)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--schedule", choices=SCHEDULES, default="linear", help="linear: decay to 0; constant: flat")
    p.add_argument("--warmup-steps", type=int, help="steps rising from 0 to --lr (default: 0 linear, 10 constant)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--zero-shot", action="store_true", help="also score the untouched base (zero_shot/*)")
    p.add_argument("--device", default="auto", help="auto (cuda when present) | cpu | cuda | cuda:N")
    p.add_argument("--log-every", type=int, default=10, help="print the loss every N steps (0: never)")
    args = p.parse_args(argv)
    if args.warmup_steps is None:
        args.warmup_steps = WARMUP[args.schedule]
    return args


def check_args(args: argparse.Namespace) -> None:
    """Fail before anything loads, naming what is wrong."""
    positive = ("train_examples", "test_examples", "steps", "batch_size", "eval_batch_size")
    positive += ("max_source_length", "max_target_length", "max_new_tokens", "rank")
    for name in positive:
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if not 0 <= args.warmup_steps < args.steps:
        raise UsageError(f"--warmup-steps must be in [0, --steps), got {args.warmup_steps}")
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
    """`steps` batches; every epoch is a fresh shuffle by one Python `random.Random(seed)` (a shuffling
    DataLoader's behaviour, from a generator the framework does not use; an epoch's last batch may be smaller)."""
    rng = random.Random(seed)
    done = 0
    while True:
        order = list(range(len(examples)))
        rng.shuffle(order)
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


def learning_rates(optimizer: torch.optim.Optimizer, args: argparse.Namespace) -> LRScheduler:
    """transformers' stock schedule: linear rises over --warmup-steps then decays to 0 at the last step;
    constant rises over --warmup-steps then holds --lr."""
    return get_scheduler(SCHEDULES[args.schedule], optimizer, args.warmup_steps, args.steps)


def train(
    model: nn.Module, examples: list[Example], args: argparse.Namespace, pad_id: int, device: torch.device
) -> tuple[list[float], int]:
    """AdamW, the schedule of `learning_rates`, gradients clipped at 1.0. Losses per step, and the non-padding
    tokens trained on (for tokens/s)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.0)
    schedule = learning_rates(optimizer, args)
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


def example_scores(predictions: list[str], references: list[list[str]]) -> list[dict[str, float]]:
    """Each prediction's scores: ROUGE F-measure against the best of its references (`rouge1`) and the mean
    over them (`rouge1_mean`), and smoothed sentence BLEU (0..100) against all of them."""
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    rows = []
    for prediction, refs in zip(predictions, references, strict=True):
        each = [scorer.score(ref, prediction) for ref in refs]
        row = {t: max(s[t].fmeasure for s in each) for t in ROUGE_TYPES}
        row |= {f"{t}_mean": sum(s[t].fmeasure for s in each) / len(each) for t in ROUGE_TYPES}
        row["bleu"] = sacrebleu.sentence_bleu(prediction, refs).score
        rows.append(row)
    return rows


def split_scores(rows: list[dict[str, float]], predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    """The split's scores: each ROUGE the mean of its rows; BLEU corpus BLEU (n-gram counts pooled over the
    split, one reference stream per reference position), which the mean of sentence BLEU is not."""
    scores = {key: sum(row[key] for row in rows) / len(rows) for key in rows[0] if key != "bleu"}
    streams = [list(stream) for stream in zip(*references, strict=True)]
    return scores | {"bleu": sacrebleu.corpus_bleu(predictions, streams).score}


def evaluate(
    stage: str,
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    test: list[Example],
    args: argparse.Namespace,
    device: torch.device,
    record: Record,
) -> list[dict[str, Any]]:
    """Generate on the test dialogues and score them: `<stage>/<name>` in the record, and the stage's rows as
    predictions.jsonl holds them (`id`: the row's index in the test file)."""
    started = time.perf_counter()
    predictions = generate(model, tokenizer, test, args, device)
    references = [e["references"] for e in test]
    rows = example_scores(predictions, references)
    record["metrics"] |= {f"{stage}/{k}": v for k, v in split_scores(rows, predictions, references).items()}
    record["timing"][f"{stage}_eval_s"] = time.perf_counter() - started
    return [
        {
            "stage": stage,
            "id": i,
            "input": tokenizer.decode(e["prompt"], skip_special_tokens=True),
            "prediction": prediction,
            "references": e["references"],
            "scores": scores,
        }
        for i, (e, prediction, scores) in enumerate(zip(test, predictions, rows, strict=True))
    ]


def build_config(args: argparse.Namespace) -> dict[str, Any]:
    """Every CLI value once, under the framework's config key where one means the same (so compare's
    columns line up with the framework's runs and `method.lr` is the rate), else under `control`."""
    return {
        "seed": args.seed,
        "train": True,
        "test": True,
        "zero_shot": args.zero_shot,
        "method": {
            "name": METHOD,
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
        "scheduler": {"name": SCHEDULES[args.schedule], "warmup_ratio": 0.0, "warmup_steps": args.warmup_steps},
        "trainer": {"max_steps": args.steps, "gradient_clip_val": 1.0},
        "generation": {"max_new_tokens": args.max_new_tokens, "num_beams": 1, "do_sample": False},
        "control": {
            "instruction": INSTRUCTION,
            "truncation": "dialogue_end",
            "loss": "model_labels_full_vocabulary",
            "data_order": "python_random",
            "metrics": "rouge_score_sacrebleu",
            "device": args.device,
            "log_every": args.log_every,
        },
        "paths": {"output_dir": str(args.out)},
    }


def config_hash(args: argparse.Namespace) -> str:
    """Hash of the arguments that decide the result (not where it is written, on what device or how loudly):
    two runs with the same hash are the same run."""
    decided = {k: v for k, v in vars(args).items() if k not in NOT_HASHED}
    return hashlib.sha256(json.dumps(decided, sort_keys=True, default=str).encode()).hexdigest()[:16]


def new_record(args: argparse.Namespace) -> Record:
    """run.json's fields that `peftlab compare` reads, as a run starts."""
    return {
        "schema": 1,
        "status": "running",
        "method": METHOD,
        "model": "smollm2_135m",
        "data": "dialogsum",
        "seed": args.seed,
        "config": build_config(args),
        "config_hash": config_hash(args),
        "params": {},
        "metrics": {},
        "timing": {},
        "memory": {},
        "artifacts": {},
        "versions": {package: metadata.version(package) for package in PACKAGES},  # each one imported here
        "started_at": time.time(),
        "finished_at": None,
        "error": None,
    }


def write_text(path: Path, text: str) -> None:
    """Through a temp file renamed over `path`: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def write_record(run_dir: Path, record: Record) -> None:
    """Strict JSON: a non-finite metric (a diverged loss) is written as null."""
    metrics = {k: v if math.isfinite(v) else None for k, v in record["metrics"].items()}
    write_text(run_dir / "run.json", json.dumps(record | {"metrics": metrics}, indent=2, allow_nan=False) + "\n")


@contextmanager
def recorded(record: Record, run_dir: Path) -> Iterator[Record]:
    """run.json written as the run starts, then as completed, or as failed (interrupted: Ctrl-C) with the error,
    so a study runs again whatever did not complete."""
    write_record(run_dir, record)
    try:
        yield record
    except BaseException as err:
        status = "interrupted" if isinstance(err, KeyboardInterrupt) else "failed"
        record |= {"status": status, "error": f"{type(err).__name__}: {err}", "finished_at": time.time()}
        write_record(run_dir, record)
        raise
    record |= {"status": "completed", "finished_at": time.time()}
    write_record(run_dir, record)


def write_rows(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    """predictions.jsonl: every row with its scores (compare's Decided? table); examples.jsonl: the same rows
    without ids and scores, as the framework writes it (sweeps/studies/continuations.py reads it)."""
    examples = [{k: v for k, v in row.items() if k not in ("id", "scores")} for row in rows]
    for name, lines in (("predictions.jsonl", rows), ("examples.jsonl", examples)):
        write_text(run_dir / name, "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))


def count_parameters(model: nn.Module) -> dict[str, float]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": trainable, "total": total, "trainable_pct": 100.0 * trainable / total}


def memory(model: nn.Module) -> dict[str, float]:
    """Peak resident memory of this process (Linux's VmHWM: the process runs this one control), the GPU's
    peak when there is one, and the parameters' bytes."""
    out: dict[str, float] = {"model_bytes": sum(p.numel() * p.element_size() for p in model.parameters())}
    status = Path("/proc/self/status")
    lines = status.read_text().splitlines() if status.exists() else []
    if peak := next((line.split()[1] for line in lines if line.startswith("VmHWM:")), None):
        out["peak_rss_mb"] = int(peak) / 1024
    if torch.cuda.is_available():
        out["peak_gpu_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def run(args: argparse.Namespace) -> Record:
    """Read and encode the data, then load, (score the base), train and score, recorded in run.json."""
    train_rows = read_jsonl(args.data / TRAIN_FILE, ("dialogue", "summary"), args.train_examples)
    test_rows = read_jsonl(args.data / TEST_FILE, ("dialogue", *REFERENCE_FIELDS), args.test_examples)
    device = pick_device(args.device)
    with recorded(new_record(args), args.out) as record:
        torch.manual_seed(args.seed)
        tokenizer, model = load(args)
        model.to(device)
        train_set, train_cut = encode(tokenizer, train_rows, args, train=True)
        test_set, test_cut = encode(tokenizer, test_rows, args, train=False)
        record["artifacts"]["truncated_inputs"] = {"train": train_cut, "test": test_cut}
        record["artifacts"]["examples"] = {"train": len(train_set), "test": len(test_set)}
        rows = evaluate("zero_shot", model, tokenizer, test_set, args, device, record) if args.zero_shot else []
        peft_config = LoraConfig(
            task_type="CAUSAL_LM", r=args.rank, lora_alpha=args.alpha, lora_dropout=args.dropout, target_modules=None
        )
        model = get_peft_model(model, peft_config)
        record["params"] = count_parameters(model)
        record["artifacts"]["injected"] = {
            "peft_type": "LORA",
            "target_modules": sorted(model.peft_config["default"].target_modules),
        }
        started = time.perf_counter()
        losses, tokens = train(model, train_set, args, tokenizer.pad_token_id, device)
        record["timing"]["train_s"] = time.perf_counter() - started
        record["timing"]["train_tokens_per_s"] = tokens / record["timing"]["train_s"]
        record["metrics"]["train/loss"] = sum(losses[-5:]) / len(losses[-5:])  # mean of the last 5 steps
        rows += evaluate("test", model, tokenizer, test_set, args, device, record)
        write_rows(args.out, rows)
        record["memory"] = memory(model)
    return record


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_args(args)
        record = run(args)
    except (UsageError, OSError) as err:  # a failure after the record started is in run.json too
        print(f"control_lora: error: {err}", file=sys.stderr)
        return 1
    m, t = record["metrics"], record["timing"]
    print(
        f"{METHOD} seed {args.seed}: test/rouge1 {m['test/rouge1']:.4f} rougeL {m['test/rougeL']:.4f} "
        f"bleu {m['test/bleu']:.2f} train/loss {m['train/loss']:.4f} in {t['train_s']:.0f}s -> {args.out / 'run.json'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
