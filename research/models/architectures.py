"""What the framework knows about each model architecture, in one table: the sublayers a bottleneck
adapter follows, the transformer-block stacks selective tuning picks from, the task-head modules that
train under every method, whether float16 is safe, and whether a causal LM's logits are its head over its
last hidden states (the labelled-positions loss, research/loop/lm_loss.py). Methods ask `architecture(model_type)`.

LoRA-family target modules are not repeated here: `target_modules: null` takes peft's own
per-architecture default (the attention query and value projections, as in the LoRA paper)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Architecture:
    attention: str  # regex: a module whose output is the self-attention sublayer's output
    feed_forward: str  # regex: a module whose output is the feed-forward sublayer's output
    blocks: str  # regex: a stack of numbered transformer blocks (`<stack>.<index>.`)
    # The task head of a sequence classifier: the new classification layer, and for BERT the pooler
    # feeding it. all-MiniLM's pooler was never trained (sentence-transformers mean-pool): frozen, it
    # passes the classifier near-constant features, so it trains with the head.
    heads: tuple[str, ...] = ()
    fp16_safe: bool = True  # T5's activations overflow float16
    plain_lm_head: bool = (
        False  # transformers' LlamaForCausalLM layout: logits = lm_head(hidden), no scaling or capping
    )


T5 = Architecture(
    attention=r"block\.\d+\.layer\.0\.SelfAttention",
    feed_forward=r"block\.\d+\.layer\.\d+\.DenseReluDense",
    blocks=r"(?:encoder|decoder)\.block",
    heads=("classification_head",),
    fp16_safe=False,
)
LLAMA = Architecture(
    attention=r"layers\.\d+\.self_attn",
    feed_forward=r"layers\.\d+\.mlp",
    blocks=r"model\.layers",
    heads=("score",),
    plain_lm_head=True,
)
BERT = Architecture(
    attention=r"layer\.\d+\.attention\.output\.dense",
    feed_forward=r"layer\.\d+\.output\.dense",
    blocks=r"encoder\.layer",
    heads=("classifier", "pooler"),
)
GPT2 = Architecture(attention=r"h\.\d+\.attn", feed_forward=r"h\.\d+\.mlp", blocks=r"transformer\.h", heads=("score",))

ARCHITECTURES: dict[str, Architecture] = {
    "t5": T5,
    "mt5": T5,
    "umt5": T5,
    "llama": LLAMA,
    "mistral": LLAMA,
    "qwen2": LLAMA,
    "bert": BERT,
    "roberta": BERT,
    "gpt2": GPT2,
}


def architecture(model_type: str, needed_by: str = "this method") -> Architecture:
    if model_type not in ARCHITECTURES:
        raise ValueError(
            f"{needed_by} does not know model_type={model_type!r}; known: {', '.join(ARCHITECTURES)} "
            "(add a row to research/models/architectures.py)"
        )
    return ARCHITECTURES[model_type]


def block_index(name: str, arch: Architecture) -> tuple[str, int] | None:
    """(stack, block index) of a parameter name inside a block stack, else None."""
    match = re.match(rf"^(?P<stack>(?:.*\.)?{arch.blocks})\.(?P<index>\d+)\.", name)
    return (match["stack"], int(match["index"])) if match else None


def head_modules(module_names: list[str], model_type: str) -> list[str]:
    """The task-head modules a classifier has, at the top level or one level down (bert.pooler). An
    architecture missing from the table is matched against every known head name."""
    arch = ARCHITECTURES.get(model_type)
    heads = arch.heads if arch else {h for a in ARCHITECTURES.values() for h in a.heads}
    return [n for n in module_names if n.split(".")[-1] in heads and n.count(".") <= 1]
