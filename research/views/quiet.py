"""Library messages a user of this framework cannot act on, kept off the console; nothing else.

Each entry names the library, the message and why nobody can act on it. Our own warnings (truncation,
logger fallbacks, ...) and every other library message still reach the user. Installed when the `research`
package is imported (research/__init__.py), i.e. before any entry point imports torch, transformers or
bitsandbytes: bitsandbytes logs its notice while it is being imported.
"""

from __future__ import annotations

import logging
import warnings

# logger name -> message prefixes dropped from it
LOG_MESSAGES = {
    # bitsandbytes on CPUs with AVX512-BF16, at import: an optional faster kernel from the `kernels` package is
    # missing; its own kernel is used instead (and the 4-bit methods keep the trainable layout regardless).
    "bitsandbytes.backends.cpu.ops": ("Failed to load CPU gemm_4bit_forward from kernels-community",),
    # Lightning: advertisements for Lightning's cloud products, and a note on how it counts steps.
    "pytorch_lightning.utilities.rank_zero": (
        "💡 Tip:",
        "Loading `train_dataloader` to estimate number of stepping batches.",
    ),
    # rouge_score, at every ROUGE computation: it says which of its tokenizers it uses.
    "absl": ("Using default tokenizer.",),
}
# (category, message regex) of Python warnings dropped
WARNINGS = (
    # peft calls transformers' deprecated alias while wrapping a model (get_peft_model, PeftModel.from_pretrained).
    (FutureWarning, r"`is_gradient_checkpointing` is deprecated"),
    # Lightning's own pytree helper uses a torch class that torch deprecated.
    (FutureWarning, r"`isinstance\(treespec, LeafSpec\)` is deprecated"),
    # peft, at every generation step of a soft-prompt method: generate() passes position ids, peft drops them.
    (UserWarning, r"Position ids are not supported for parameter efficient tuning"),
    # peft, saving an adapter of a base read from a GGUF file (no config.json beside it): no method here
    # resizes the vocabulary, so its assumption is right.
    (UserWarning, r"Could not find a config file in .* - will assume that the vocabulary was not modified"),
)


class DropMessages(logging.Filter):
    """Drops records whose message starts with one of `prefixes`."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefixes)


def install() -> None:
    """Idempotent: a logger gets one filter; `warnings.filterwarnings` replaces an identical entry."""
    for name, prefixes in LOG_MESSAGES.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropMessages) for f in logger.filters):
            logger.addFilter(DropMessages(prefixes))
    for category, message in WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
