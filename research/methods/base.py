"""The shared training/evaluation loop. A strategy subclasses `FineTuneModule` and decides only:
what is injected and what trains (`inject`), what is saved (`save_weights`), and, for methods whose
untrained state differs from the base model (soft prompts), how to reach the base (`base_model`).

Subclasses set their own hyperparameters *before* calling `super().__init__`, which calls `inject`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from safetensors.torch import save_file
from torch import nn
from transformers import (
    PreTrainedTokenizerBase,
    get_constant_schedule_with_warmup,
    get_linear_schedule_with_warmup,
)

from research.metrics import classification_metrics, generation_metrics

MODEL_INPUTS = ("input_ids", "attention_mask", "labels")
# The task head of a sequence classifier, trained under every method: the new classification layer
# (BERT-like `classifier`, Llama-like `score`) and BERT's `pooler`, the dense layer that feeds it (as
# RoBERTa's head holds its own). Why the pooler: sentence-transformers checkpoints such as all-MiniLM
# never trained theirs (they mean-pool; its weights have std 0.009), so frozen it passes the classifier
# near-constant features and every frozen-base method lags full fine-tuning for that reason alone.
HEAD_NAMES = ("classifier", "score", "pooler")
OPTIMIZERS = ("adamw", "adamw8bit", "paged_adamw8bit")
SCHEDULERS = ("linear", "constant")  # after warm-up: linear decay to 0, or constant


def count_parameters(model: nn.Module) -> dict[str, float]:
    """Unique parameters; 4-bit packed weights count as 2 parameters per stored byte."""
    trainable = total = 0
    for p in model.parameters():
        n = p.numel() * 2 if p.dtype == torch.uint8 and hasattr(p, "quant_state") else p.numel()
        total += n
        trainable += n if p.requires_grad else 0
    return {"trainable": trainable, "total": total, "trainable_pct": 100.0 * trainable / max(total, 1)}


def positive(field: str, value: float | int) -> None:
    if value is None or value <= 0:
        raise ValueError(f"{field}={value!r} must be > 0")


def head_modules(model: nn.Module) -> list[str]:
    """Names of the task-head modules this classifier has (top level, or one level down: bert.pooler)."""
    return [name for name, _ in model.named_modules() if name.split(".")[-1] in HEAD_NAMES and name.count(".") <= 1]


def unfreeze_head(model: nn.Module) -> None:
    """The classification head is new for the task: it trains under every method."""
    for name in head_modules(model):
        model.get_submodule(name).requires_grad_(True)


def check_optimizer(optim: Mapping[str, Any]) -> None:
    """Named choices checked when the module is built, not when fit() first asks for the optimizer."""
    for key, allowed in (("name", OPTIMIZERS), ("scheduler", SCHEDULERS)):
        if optim.get(key, allowed[0]) not in allowed:
            raise ValueError(f"optimizer.{key}={optim[key]!r}; allowed: {', '.join(allowed)}")


def adamw_class(name: str, device: torch.device) -> type[torch.optim.Optimizer]:
    """torch AdamW, or bitsandbytes' 8-bit AdamW (state in 8 bits: 4x less optimizer memory).
    Paged optimizers page GPU state to CPU memory: meaningless on CPU, refused there."""
    if name == "adamw":
        return torch.optim.AdamW
    if name == "paged_adamw8bit" and device.type != "cuda":
        raise ValueError("optimizer.name=paged_adamw8bit needs a GPU; on CPU use adamw8bit or adamw")
    try:
        import bitsandbytes.optim as bnb_optim  # optional dependency, only for the 8-bit optimizers
    except ImportError as err:
        raise ValueError(f"optimizer.name={name} needs bitsandbytes (pip install bitsandbytes)") from err
    return bnb_optim.AdamW8bit if name == "adamw8bit" else bnb_optim.PagedAdamW8bit


class FineTuneModule(pl.LightningModule):
    def __init__(
        self,
        *,
        backbone: nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        task: str,
        name: str,
        lr: float,
        optimizer: Mapping[str, Any],
        generation: Mapping[str, Any],
    ) -> None:
        super().__init__()
        positive("method.lr", lr)
        check_optimizer(optimizer)
        self.tokenizer, self.task, self.method, self.lr = tokenizer, task, name, lr
        self.optim, self.generation = dict(optimizer), dict(generation)
        self.model = self.inject(backbone)
        if not any(p.requires_grad for p in self.model.parameters()):
            raise ValueError(f"method {name!r} left no parameter trainable")
        self.eval_prefix = "test"  # train.py sets "zero_shot" for the baseline pass
        self.results: dict[str, float] = {}
        self.examples: dict[str, list[dict[str, Any]]] = {}
        self.num_examples_kept = 5
        self.tokens_seen = 0  # non-padding input tokens trained on, for tokens/s
        self._eval: dict[str, list] = {}
        self.strict_loading = False  # checkpoints hold only the trainable tensors

    # --- what a strategy decides -------------------------------------------------------------
    @staticmethod
    def load_kwargs(method_cfg: Mapping[str, Any]) -> dict[str, Any]:
        """Extra `from_pretrained` arguments (QLoRA: a quantization config): read before the base loads."""
        return {}

    def inject(self, model: nn.Module) -> nn.Module:
        raise NotImplementedError

    def save_weights(self, directory: Path) -> Path:
        """Default: the trainable tensors only, as safetensors."""
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {n: p.detach().cpu().contiguous() for n, p in self.model.named_parameters() if p.requires_grad}
        save_file(tensors, str(directory / "trainable.safetensors"))
        return directory

    @contextmanager
    def base_model(self) -> Iterator[nn.Module]:
        """The model before fine-tuning, for the zero-shot baseline."""
        yield self.model

    # --- training ---------------------------------------------------------------------------
    def forward(self, batch: Mapping[str, Any], model: nn.Module | None = None) -> Any:
        return (model or self.model)(**{k: batch[k] for k in MODEL_INPUTS})

    def on_train_start(self) -> None:
        self.model.train()  # models come from transformers in eval mode (dropout off)

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self(batch).loss
        self.tokens_seen += int(batch["attention_mask"].sum())
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["input_ids"].shape[0])
        return loss

    def configure_optimizers(self) -> dict[str, Any]:
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = adamw_class(self.optim.get("name", "adamw"), params[0].device)(
            params,
            lr=self.lr,
            weight_decay=self.optim.get("weight_decay", 0.0),
            betas=tuple(self.optim.get("betas", (0.9, 0.999))),
            eps=self.optim.get("eps", 1e-8),
        )
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        warmup = self.optim.get("warmup_steps") or math.ceil(self.optim.get("warmup_ratio", 0.0) * total)
        schedule = self.optim.get("scheduler", "linear")
        if schedule == "linear":
            sched = get_linear_schedule_with_warmup(opt, warmup, total)
        else:
            sched = get_constant_schedule_with_warmup(opt, warmup)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        trainable = {f"model.{n}" for n, p in self.model.named_parameters() if p.requires_grad}
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in trainable}

    # --- evaluation -------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._eval = {"predictions": [], "references": [], "losses": [], "sizes": []}

    def on_test_epoch_start(self) -> None:
        self.on_validation_epoch_start()
        self._eval_started = time.perf_counter()

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._evaluate_batch(batch, self.model)

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        if self.eval_prefix == "zero_shot":
            with self.base_model() as model:
                self._evaluate_batch(batch, model)
        else:
            self._evaluate_batch(batch, self.model)

    def on_validation_epoch_end(self) -> None:
        self.results.update(self._log_metrics("val"))  # the last epoch's: what a sweeper selects on

    def on_test_epoch_end(self) -> None:
        metrics = self._log_metrics(self.eval_prefix)
        self.results.update(metrics)
        self.results[f"{self.eval_prefix}/eval_s"] = time.perf_counter() - self._eval_started

    def _evaluate_batch(self, batch: Mapping[str, Any], model: nn.Module) -> None:
        out = self(batch, model)
        n = batch["input_ids"].shape[0]
        self._eval["losses"].append(out.loss.detach().float() * n)
        self._eval["sizes"].append(n)
        if self.task == "classification":
            self._eval["predictions"] += out.logits.argmax(-1).tolist()
            self._eval["references"] += batch["labels"].tolist()
        else:
            self._eval["predictions"] += self.generate(batch, model)
            self._eval["references"] += batch["references"]

    def _gathered(self) -> dict[str, list]:
        """This stage's predictions, references and losses from every process: under DDP each rank saw
        only its share of the split (DistributedSampler; when the split size is not a multiple of the
        number of processes it repeats a few examples to even the shares)."""
        ev = {**self._eval, "losses": [float(x) for x in self._eval.get("losses", [])]}
        if self.trainer.world_size == 1:
            return ev
        parts: list[dict[str, list]] = [{}] * self.trainer.world_size
        torch.distributed.all_gather_object(parts, ev)
        return {k: [v for p in parts for v in p[k]] for k in ev}

    def _log_metrics(self, stage: str) -> dict[str, float]:
        ev = self._gathered()
        if not ev.get("sizes"):
            return {}
        metrics = {"loss": sum(ev["losses"]) / sum(ev["sizes"])}
        if self.task == "classification":
            metrics.update(classification_metrics(ev["predictions"], ev["references"]))
        else:
            metrics.update(generation_metrics(ev["predictions"], ev["references"]))
            self.examples[stage] = [
                {"prediction": p, "references": r}
                for p, r in zip(ev["predictions"][: self.num_examples_kept], ev["references"], strict=False)
            ]
        metrics = {f"{stage}/{k}": v for k, v in metrics.items()}
        self.log_dict(metrics, prog_bar=stage == "val", sync_dist=True)  # equal on every rank (gathered)
        return metrics

    @torch.no_grad()
    def generate(self, batch: Mapping[str, Any], model: nn.Module | None = None) -> list[str]:
        """Batched greedy (by default) generation; decoder-only prompts are left-padded."""
        model = model or self.model
        kwargs = {"pad_token_id": self.tokenizer.pad_token_id, "eos_token_id": self.tokenizer.eos_token_id}
        kwargs.update(self.generation)
        if self.task == "causal":
            prompt = batch["prompt_ids"]
            out = model.generate(input_ids=prompt, attention_mask=batch["prompt_mask"], **kwargs)
            out = out[:, prompt.shape[1] :]
        else:
            out = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **kwargs)
        return [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]
