"""What did prompt tuning learn? For each virtual token, the vocabulary tokens whose input embeddings
are nearest by cosine similarity: the interpretability analysis of Lester et al. (2021), section 7.
Written after training as `soft_prompt_neighbors.json` / `.md` in the run folder and as a table through
every logger that has `log_text` (W&B), by `callbacks=soft_prompt` (conf/callbacks/soft_prompt.yaml)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from peft import PeftModel
from torch.nn import functional as F
from transformers import PreTrainedTokenizerBase

from research.methods.base import Method
from research.tasks import Task

FILE = "soft_prompt_neighbors"


@torch.no_grad()
def nearest_tokens(
    prompt: torch.Tensor, embeddings: torch.Tensor, tokenizer: PreTrainedTokenizerBase, k: int = 5
) -> list[dict[str, Any]]:
    """One row per virtual token (row of `prompt`): its k nearest vocabulary tokens, best first."""
    cos = F.normalize(prompt.float(), dim=-1) @ F.normalize(embeddings.float(), dim=-1).T
    scores, ids = cos.topk(min(k, cos.shape[1]), dim=-1)
    return [
        {
            "virtual_token": i,
            "neighbors": [
                {"id": t, "token": tokenizer.convert_ids_to_tokens(t), "cosine": round(c, 6)}
                for t, c in zip(row_ids.tolist(), row_scores.tolist(), strict=True)
            ],
        }
        for i, (row_ids, row_scores) in enumerate(zip(ids, scores, strict=True))
    ]


def soft_prompt_neighbors(model: PeftModel, tokenizer: PreTrainedTokenizerBase, k: int = 5) -> list[dict[str, Any]]:
    """The model's active soft prompt against its input embedding matrix. Seq2seq models under peft
    carry one prompt per stack (encoder, decoder): rows n..2n-1 are the second one."""
    prompt = model.prompt_encoder[model.active_adapter].embedding.weight
    return nearest_tokens(prompt, model.get_input_embeddings().weight, tokenizer, k)


class SoftPromptNeighbors(pl.Callback):
    """After training: json and markdown tables in the run folder, and a table through the loggers."""

    def __init__(self, k: int = 5) -> None:
        if k < 1:
            raise ValueError(f"callbacks.soft_prompt_neighbors.k={k} must be >= 1")
        self.k = k

    def preflight(self, task: Task, method: Method) -> None:
        if not method.has_soft_prompt:
            raise ValueError(
                f"callbacks.soft_prompt_neighbors reads a soft prompt; method={method.name} has none "
                "(use it with prompt tuning, or choose callbacks=default)"
            )

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            self.write(soft_prompt_neighbors(pl_module.model, pl_module.tokenizer, self.k), trainer)

    def write(self, rows: list[dict[str, Any]], trainer: pl.Trainer) -> None:
        run_dir = Path(trainer.default_root_dir)
        (run_dir / f"{FILE}.json").write_text(json.dumps(rows, indent=2, ensure_ascii=False))
        table = [[r["virtual_token"], *(f"{n['token']!r} ({n['cosine']:.3f})" for n in r["neighbors"])] for r in rows]
        columns = ["virtual token", *(f"neighbor {j + 1} (cos)" for j in range(len(table[0]) - 1))]
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in table]
        (run_dir / f"{FILE}.md").write_text("\n".join(lines) + "\n")
        for lg in trainer.loggers:
            if hasattr(lg, "log_text"):
                lg.log_text(key=FILE, columns=columns, data=table)
