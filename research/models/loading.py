"""Build the base model and its tokenizer from a `conf/model/*.yaml` config.

Sources, in order of precedence: `pretrained=false` builds the architecture from `config` with random
weights (offline; real-scale parameter counts and benchmarks); otherwise weights come from
`name_or_path` (hub id or local directory), optionally from a GGUF file inside it.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from transformers import AutoConfig, PreTrainedModel, PreTrainedTokenizerBase

from research.models.tokenizers import byte_tokenizer, load_tokenizer

if TYPE_CHECKING:
    from research.tasks import Task

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class ModelSpec:
    """Mirror of `conf/model/*.yaml`; validated here so a typo fails before anything loads."""

    name: str
    task: Task
    model_type: str
    name_or_path: str | None = None
    pretrained: bool = True
    dtype: str = "float32"
    gguf_file: str | None = None
    tokenizer: str | None = None
    num_labels: int | None = None
    chat_template: bool = False
    gradient_checkpointing: bool = False
    compile: bool = False
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from research.tasks import Task  # here, not at the top: the tasks import research.models.architectures

        self.task = Task.parse(self.task)
        if self.dtype not in DTYPES:
            raise ValueError(f"model.dtype={self.dtype!r} is not supported; allowed: {', '.join(DTYPES)}")
        if self.tokenizer not in (None, "byte"):
            raise ValueError(f"model.tokenizer={self.tokenizer!r}; allowed: null (from name_or_path) or 'byte'")
        if self.pretrained and not self.name_or_path:
            raise ValueError("model.pretrained=true needs model.name_or_path (a hub id or a local directory)")
        if self.pretrained:
            check_local_source(self)
        if self.task.has_head and not self.num_labels:
            raise ValueError(f"model.num_labels must be set (>= 2) for task={self.task}")


def check_local_source(spec: ModelSpec) -> None:
    """A local folder is checked before anything loads, so the error names the real cause (transformers'
    own errors talk of repo ids, or of a missing sentencepiece, for a folder that lacks config.json)."""
    path = Path(spec.name_or_path).expanduser()
    local = path.exists() or spec.name_or_path.startswith((".", "/", "~")) or spec.name_or_path.count("/") > 1
    if not local:
        return  # a hub id: loaded (or reported unreachable) by transformers
    if not path.is_dir():
        raise FileNotFoundError(
            f"model.name_or_path={spec.name_or_path!r} does not exist (looked in {path.resolve()}); "
            "point it at the model's folder: model.name_or_path=/path/to/model"
        )
    if spec.gguf_file:
        if not (path / spec.gguf_file).is_file():
            present = sorted(p.name for p in path.glob("*.gguf")) or "none"
            raise FileNotFoundError(
                f"model.gguf_file={spec.gguf_file!r} is not in {path}; .gguf files there: {present}"
            )
    elif not (path / "config.json").is_file():
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        hint = f"; it holds GGUF files, name one with model.gguf_file={ggufs[0]}" if ggufs else ""
        raise FileNotFoundError(
            f"model.name_or_path={spec.name_or_path!r} holds no config.json: not a transformers model folder{hint}"
        )


def fingerprint(model: nn.Module) -> str:
    """A short hash of the base model's architecture and weights (the first values of every tensor):
    weights trained on one base are refused on another (another size, architecture or random seed),
    which would otherwise load without a word and give wrong outputs."""
    digest = hashlib.sha256(type(model).__name__.encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().flatten()[:8].to(torch.float64).cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def build_tokenizer(spec: ModelSpec) -> PreTrainedTokenizerBase:
    if spec.tokenizer == "byte":
        tokenizer = byte_tokenizer()
    else:
        try:
            tokenizer = load_tokenizer(spec.name_or_path, spec.gguf_file)
        except OSError as err:
            if spec.pretrained:
                raise _unreachable(spec, err) from err
            log.warning("tokenizer of %s unreachable (%s); using the byte tokenizer", spec.name_or_path, err)
            tokenizer = byte_tokenizer()
    tokenizer.padding_side = spec.task.padding_side  # left where generation continues the prompt (decoder-only)
    return tokenizer


def build_model(spec: ModelSpec, tokenizer: PreTrainedTokenizerBase, **load_kwargs: Any) -> PreTrainedModel:
    """`load_kwargs` (e.g. a `quantization_config`) go to `from_pretrained` only."""
    auto = spec.task.auto_class
    dtype = DTYPES[spec.dtype]
    extra = {"num_labels": spec.num_labels} if spec.task.has_head else {}
    if spec.pretrained:
        kwargs = {"gguf_file": spec.gguf_file} if spec.gguf_file else {}
        try:
            model = auto.from_pretrained(spec.name_or_path, dtype=dtype, **kwargs, **extra, **load_kwargs)
        except OSError as err:
            raise _unreachable(spec, err) from err
        if spec.gguf_file:
            _forget_gguf_quantizer(model)
    else:
        config = _architecture(spec, tokenizer, extra)
        model = auto.from_config(config, dtype=dtype)
        if spec.config.get("tie_word_embeddings") is False:
            _untie_output_embeddings(model)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    apply_fast_path(model, gradient_checkpointing=spec.gradient_checkpointing, compile=spec.compile)
    return model


def skeleton(spec: ModelSpec, tokenizer: PreTrainedTokenizerBase) -> nn.Module | None:
    """The base's module tree on the meta device (no weights, no memory, no seconds of loading), for checks that
    name modules; None where its config comes with its weights (a GGUF file) or cannot be read here (the
    loading then says why)."""
    if spec.gguf_file:
        return None
    extra = {"num_labels": spec.num_labels} if spec.task.has_head else {}
    try:
        config = AutoConfig.from_pretrained(spec.name_or_path, **extra) if spec.pretrained else None
        config = config or _architecture(spec, tokenizer, extra)
        with torch.device("meta"):
            return spec.task.auto_class.from_config(config)
    except (OSError, ValueError):
        return None


def build_base(spec: ModelSpec, tokenizer: PreTrainedTokenizerBase, method: Any, seed: int) -> PreTrainedModel:
    """The run's base model: seeded here, so a base built from a config (random weights) is a function of
    (seed, model config) alone, and every command that rebuilds a run's base gets the same weights.
    transformers refuses a quantization_config next to a GGUF file: such a base loads de-quantized and
    the method quantizes it itself."""
    source = spec.name_or_path if spec.pretrained else f"built from its config with seed {seed}"
    log.info("loading the base model %s (%s)", spec.name, source)  # the long wait of a run starts here
    torch.manual_seed(seed)
    return build_model(spec, tokenizer, **({} if spec.gguf_file else method.load_kwargs()))


def apply_fast_path(model: PreTrainedModel, *, gradient_checkpointing: bool, compile: bool) -> None:
    """Gradient checkpointing recomputes each block's activations in the backward pass (less memory,
    ~1/3 more compute). It is non-reentrant: a reentrant checkpoint returns no gradient when none of its
    inputs requires one, which is the case for a frozen base under LoRA.
    `compile` compiles the repeated blocks in place (regional compilation: one compiled graph serves
    every layer); in place, so that adapters injected afterwards are traced too and parameter names,
    hence saved weights, do not change."""
    if gradient_checkpointing:
        if not model.supports_gradient_checkpointing:
            raise ValueError(f"model.gradient_checkpointing=true: {type(model).__name__} does not support it")
        # Active in training mode only: evaluation's generate() keeps its KV cache.
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    if compile:
        blocks = [m for m in model.modules() if type(m).__name__ in (model._no_split_modules or ())]
        if not blocks:
            raise ValueError(f"model.compile=true: no repeated blocks known for {type(model).__name__}")
        for block in blocks:
            block.compile()


def _architecture(spec: ModelSpec, tokenizer: PreTrainedTokenizerBase, extra: dict) -> Any:
    if spec.name_or_path and not spec.config:
        return AutoConfig.from_pretrained(spec.name_or_path, **extra)
    arch = {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    arch.update(spec.config)  # the YAML wins: real architectures keep their real vocabulary size
    if spec.model_type == "t5":
        arch.setdefault("decoder_start_token_id", tokenizer.pad_token_id)
    return AutoConfig.for_model(spec.model_type, **arch, **extra)


def _untie_output_embeddings(model: PreTrainedModel) -> None:
    """transformers 5 always ties T5's lm_head to the input embedding when building from a config,
    but T5 v1.1 / FLAN-T5 checkpoints have a separate, unscaled lm_head: give it its own weights,
    drawn with std d_model**-0.5 so that the random model starts with logits of order one."""
    head = model.get_output_embeddings()
    if head is not None and head.weight is model.get_input_embeddings().weight:
        weight = torch.empty_like(head.weight)
        head.weight = nn.Parameter(nn.init.normal_(weight, std=weight.shape[1] ** -0.5))
    model.config.tie_word_embeddings = False


def _forget_gguf_quantizer(model: PreTrainedModel) -> None:
    """transformers de-quantizes GGUF weights to plain tensors at load but keeps a GGUF quantizer on the
    model, and `save_pretrained` then refuses it: full fine-tuning could not save what it trained."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def _unreachable(spec: ModelSpec, err: Exception) -> OSError:
    return OSError(
        f"cannot load model.name_or_path={spec.name_or_path!r} ({type(err).__name__}: {err}). "
        "Offline? Pass a local directory (model.name_or_path=/path/to/model), "
        "or model.pretrained=false to build the architecture from its config with random weights."
    )
