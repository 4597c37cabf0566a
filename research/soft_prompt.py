"""What did prompt tuning learn? For each virtual token, the vocabulary tokens whose input embeddings
are nearest by cosine similarity: the interpretability analysis of Lester et al. (2021), section 7.
Written after training as `soft_prompt_neighbors.json` / `.md` in the run directory and as a table
through every logger that has `log_text` (W&B)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F
from transformers import PreTrainedTokenizerBase

from research.methods.prompt_tuning import PromptTuning

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


def soft_prompt_neighbors(module: PromptTuning, k: int = 5) -> list[dict[str, Any]]:
    """The module's active soft prompt against its model's input embedding matrix. Seq2seq models
    under peft carry one prompt per stack (encoder, decoder): rows n..2n-1 are the second one."""
    model = module.model
    prompt = model.prompt_encoder[model.active_adapter].embedding.weight
    return nearest_tokens(prompt, model.get_input_embeddings().weight, module.tokenizer, k)


def write_neighbors(module: Any, run_dir: Path, loggers: list, k: int = 5) -> None:
    """After training, for prompt tuning only (other methods learn no soft prompt): json, markdown, loggers."""
    if not isinstance(module, PromptTuning):
        return
    rows = soft_prompt_neighbors(module, k)
    (run_dir / f"{FILE}.json").write_text(json.dumps(rows, indent=2, ensure_ascii=False))
    table = [[r["virtual_token"], *(f"{n['token']!r} ({n['cosine']:.3f})" for n in r["neighbors"])] for r in rows]
    columns = ["virtual token", *(f"neighbor {j + 1} (cos)" for j in range(len(table[0]) - 1))]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in table]
    (run_dir / f"{FILE}.md").write_text("\n".join(lines) + "\n")
    for lg in loggers:
        if hasattr(lg, "log_text"):
            lg.log_text(key=FILE, columns=columns, data=table)
