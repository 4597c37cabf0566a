"""Every peft tuner through one method: `peft_config` in `conf/method/<name>.yaml` is a partial peft
config (`_target_: peft.LoraConfig`, `_partial_: true`) holding any of that config's own fields; the task
type (and AdaLoRA's step count) are filled in here. A new peft method is one YAML file.

What this class adds to plain peft:
- fields checked before the base model loads (the config is built once, with placeholders);
- the task head (`ctx.heads`: the arch table's `heads`) added to `modules_to_save`, so it trains in peft's
  copy and is saved with the adapter;
- prompt tuning initialised from `init_text` with the run's own tokenizer (also the offline byte one);
- PiSSA/OLoRA initialisations, which rewrite the base weights, saved as plain LoRA that loads onto the
  untouched base (peft's `path_initial_model_for_weight_conversion`);
- AdaLoRA's rank reallocation after every optimizer step (`update_and_allocate`);
- an optional 4-bit base (`quantization:`, see quantization.py): QLoRA is LoRA plus that node;
- merging into a de-quantized base for 4-bit models, and a refusal, with the reason, where nothing merges.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from peft import (
    PEFT_TYPE_TO_CONFIG_MAPPING,
    AdaLoraConfig,
    PeftConfig,
    PeftModel,
    get_peft_model,
    prepare_model_for_kbit_training,
)
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from research.methods.base import Context, MergeRefused, Method
from research.methods.quantization import Quantization, is_4bit, keep_trainable_layout, quantize
from research.tasks import Task

# peft tuners this loop cannot drive as they need: refused with the reason.
UNSUPPORTED = {
    "POLY": "Poly routes each example by a task id, which the framework's batches do not carry",
    "XLORA": "X-LoRA mixes several pre-trained LoRA adapters, which a single run does not have",
    "MULTITASK_PROMPT_TUNING": "it needs a task id per example, which the framework's batches do not carry",
    "ADAPTION_PROMPT": "peft supports it for a few decoder-only families only, and not for generation here",
}
WEIGHT_REWRITING_INITS = ("pissa", "olora")  # prefixes of init_lora_weights values that change the base
# Run length used to check the fields when the method is built, before the run's length is known: long
# enough for any AdaLoRA schedule (tinit + tfinal); `inject` checks the schedule against the real run.
PLACEHOLDER_STEPS = 10**9


class PeftMethod(Method):
    def __init__(
        self,
        name: str,
        lr: float,
        peft_config: Callable[..., PeftConfig],
        init_text: str | None = None,
        quantization: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(name, lr)
        self.make_config = _plain(peft_config)
        self.init_text = init_text
        self.quantization = Quantization(**quantization) if quantization else None
        config = self.config(Task.CAUSAL, total_steps=PLACEHOLDER_STEPS)  # placeholders: checks every field now
        self.has_soft_prompt = config.is_prompt_learning and config.peft_type.value == "PROMPT_TUNING"
        if init_text is not None and not self.has_soft_prompt:
            raise ValueError("method.init_text initialises a soft prompt: only prompt tuning has one")
        self._initial_adapter: tempfile.TemporaryDirectory | None = None

    def config(self, task: Task, total_steps: int | None = None) -> PeftConfig:
        """The complete peft config for `task`; peft's own validation errors name our field."""
        if not callable(self.make_config):
            raise ValueError("method.peft_config must be a peft config node with `_partial_: true`")
        refuse_unsupported(self.make_config.func)  # before its fields: another tuner's fields would fail first
        kwargs: dict[str, Any] = {"task_type": task.peft_task_type}
        fields = getattr(self.make_config.func, "__dataclass_fields__", {})
        if "total_step" in fields and self.make_config.keywords.get("total_step") is None:
            kwargs["total_step"] = total_steps  # AdaLoRA schedules its rank budget over the whole run
        try:
            config = self.make_config(**kwargs)
        except (TypeError, ValueError) as err:
            run = f" (total_step={total_steps}: this run's optimizer steps)" if "total_step" in kwargs else ""
            raise ValueError(f"method.peft_config ({self.make_config.func.__name__}): {err}{run}") from None
        targets = getattr(config, "target_modules", None)
        if targets is not None and not isinstance(targets, str) and len(targets) == 0:
            raise ValueError(
                "method.peft_config.target_modules=[] adapts nothing; list module names, or null for the "
                "architecture's default (attention query and value)"
            )
        return config

    def load_kwargs(self) -> dict[str, Any]:
        return {"quantization_config": self.quantization.bnb_config()} if self.quantization else {}

    def check_base(self, skeleton: nn.Module, task: Task) -> None:
        check_target_modules(skeleton, getattr(self.config(task, PLACEHOLDER_STEPS), "target_modules", None))

    def inject(self, model: PreTrainedModel, ctx: Context) -> PeftModel:
        config = self.config(ctx.task, ctx.total_steps)
        if self.quantization:
            model = self._quantized(model)
        check_target_modules(model, getattr(config, "target_modules", None))
        if ctx.heads:  # peft adds classifier/score itself, not BERT's pooler
            heads = {name.split(".")[-1] for name in ctx.heads}
            config.modules_to_save = sorted(set(config.modules_to_save or []) | heads)
        try:
            peft_model = get_peft_model(model, config)
        except ValueError as err:  # values peft checks only against the model, e.g. r=0
            raise ValueError(f"method.peft_config ({type(config).__name__}): {err}") from None
        if self.has_soft_prompt and self.init_text:
            init_soft_prompt(peft_model, ctx.tokenizer, self.init_text)
        expose_past_key_values(peft_model)
        if self._rewrites_base(config):
            self._keep_initial_adapter(peft_model)
        return peft_model

    def _quantized(self, model: PreTrainedModel) -> PreTrainedModel:
        # gradient checkpointing was set on the float model, which `quantize` replaces: carry it over.
        checkpointing = model.is_activation_checkpointing
        if not is_4bit(model):
            model = quantize(model, self.quantization.bnb_config())
        keep_trainable_layout(model)
        return prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=checkpointing, gradient_checkpointing_kwargs={"use_reentrant": False}
        )

    @staticmethod
    def _rewrites_base(config: PeftConfig) -> bool:
        init = getattr(config, "init_lora_weights", True)
        return isinstance(init, str) and init.startswith(WEIGHT_REWRITING_INITS)

    def _keep_initial_adapter(self, model: PeftModel) -> None:
        """PiSSA/OLoRA subtract their initial adapter from the base weights: the trained adapter is only
        right on that residual base. Keep the initial adapter so `save` converts to plain LoRA."""
        self._initial_adapter = tempfile.TemporaryDirectory(prefix="initial-adapter-")
        config = model.peft_config[model.active_adapter]
        init, config.init_lora_weights = config.init_lora_weights, True  # re-loading it must not re-run SVD
        model.save_pretrained(self._initial_adapter.name)
        config.init_lora_weights = init

    @contextmanager
    def base_model(self, model: nn.Module) -> Iterator[nn.Module]:
        """The adapter switched off; but PiSSA/OLoRA's base weights are the residual W - B0 A0, so until
        the first step (when the zero-shot pass and forgetting ask) their base is the model as it is."""
        if self._initial_adapter is not None:
            yield model
            return
        if model.peft_config[model.active_adapter].is_prompt_learning:
            # the soft prompt lives in PeftModel.forward only; peft's disable_adapter would patch
            # prepare_inputs_for_generation, which its classifiers lack (AttributeError)
            yield model.get_base_model()
            return
        with model.disable_adapter():
            yield model.get_base_model()

    def on_optimizer_step(self, model: nn.Module, step: int) -> None:
        if hasattr(model.base_model, "update_and_allocate"):  # AdaLoRA: importance scores -> new ranks
            model.base_model.update_and_allocate(step)

    def save(self, model: nn.Module, directory: Path) -> Path:
        """peft's own format (adapter_config.json + adapter_model.safetensors), loadable by plain peft."""
        if self._initial_adapter is None:
            model.save_pretrained(directory)
        else:
            model.save_pretrained(directory, path_initial_model_for_weight_conversion=self._initial_adapter.name)
        return directory

    def load(self, base: PreTrainedModel, directory: Path, ctx: Context) -> PeftModel:
        if not (directory / "adapter_config.json").is_file():
            raise FileNotFoundError(f"{directory}: no adapter_config.json (peft methods save one there)")
        if self.quantization and not is_4bit(base):
            base = quantize(base, self.quantization.bnb_config())
        if is_4bit(base):
            keep_trainable_layout(base)  # the kernels the run trained and was scored with: identical outputs
        model = PeftModel.from_pretrained(base, str(directory), is_trainable=self._loads_trainable())
        expose_past_key_values(model)
        return model.requires_grad_(False).eval()

    def load_beside(self, model: nn.Module, directory: Path, name: str, ctx: Context) -> PeftModel:
        """Another run's adapter of this method, loaded under `name` onto the PeftModel `load` returned."""
        if not isinstance(model, PeftModel):
            return super().load_beside(model, directory, name, ctx)
        if not (directory / "adapter_config.json").is_file():
            raise FileNotFoundError(f"{directory}: no adapter_config.json (peft methods save one there)")
        model.load_adapter(str(directory), adapter_name=name, is_trainable=self._loads_trainable())
        return model.requires_grad_(False).eval()

    def _loads_trainable(self) -> bool:
        """AdaLoRA's forward adds its orthogonality term to the loss of its *trainable* adapter and fails
        on an inference-mode one: it loads trainable (the loss the run reported), then is frozen."""
        return issubclass(self.make_config.func, AdaLoraConfig)

    def merge(self, model: nn.Module) -> PreTrainedModel:
        """Fold the adapter into the base weights (consumes `model`, like peft's `merge_and_unload`).
        On a 4-bit base peft would re-quantize the merged weights, which moves the logits; the base is
        de-quantized first instead, so the merged model computes exactly what the 4-bit model did."""
        config = model.peft_config[model.active_adapter]
        if config.is_prompt_learning:
            raise MergeRefused(
                f"method {self.name!r} learns virtual tokens, not weights: there is nothing to fold into the "
                "base; serve it unmerged (peftlab infer run_dir=...)"
            )
        if is_4bit(model.get_base_model()):
            return _merge_dequantized(model)
        return model.merge_and_unload()

    def describe(self, model: nn.Module) -> dict[str, Any]:
        config = model.peft_config[model.active_adapter]
        keep = ("peft_type", "target_modules", "modules_to_save", "rank_pattern", "num_virtual_tokens")
        out = {k: v for k, v in dataclasses.asdict(config).items() if k in keep and v not in (None, {}, [])}
        if config.peft_type.value == "ADALORA" and "rank_pattern" in out:  # a keep-mask per rank: its count
            out["rank_pattern"] = {k.split(".lora_E")[0]: sum(mask) for k, mask in out["rank_pattern"].items()}
        return {k: sorted(v) if isinstance(v, set) else getattr(v, "value", v) for k, v in out.items()}


def refuse_unsupported(config_class: Any) -> None:
    """Only peft config classes, and only tuners this loop can drive."""
    kinds = {cls: kind.value for kind, cls in PEFT_TYPE_TO_CONFIG_MAPPING.items()}
    name = getattr(config_class, "__qualname__", repr(config_class))
    if config_class not in kinds:
        raise ValueError(
            f"method.peft_config._target_={name} is not a peft config class; allowed: a class of "
            "peft.PEFT_TYPE_TO_CONFIG_MAPPING, e.g. peft.LoraConfig, peft.LoKrConfig, peft.IA3Config"
        )
    if kinds[config_class] in UNSUPPORTED:
        raise ValueError(f"method.peft_config._target_={name}: not supported: {UNSUPPORTED[kinds[config_class]]}")


def _plain(partial: Any) -> Any:
    """Hydra hands nested nodes over as DictConfig/ListConfig; peft serialises its config with json."""
    if not isinstance(partial, functools.partial):
        return partial
    kwargs = {k: OmegaConf.to_container(v) if isinstance(v, DictConfig | ListConfig) else v
              for k, v in partial.keywords.items()}  # fmt: skip
    return functools.partial(partial.func, *partial.args, **kwargs)


@torch.no_grad()
def init_soft_prompt(model: PeftModel, tokenizer: PreTrainedTokenizerBase, text: str) -> None:
    """The soft prompt starts as the embeddings of `text`, repeated to length (Lester et al.'s class-label
    init). Done here with the run's tokenizer: peft's TEXT init re-loads a tokenizer by name."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError(f"method.init_text={text!r} tokenizes to nothing")
    prompt = model.prompt_encoder[model.active_adapter].embedding.weight
    repeats = -(-prompt.shape[0] // len(ids))  # ceil: cover every virtual token (and both T5 stacks)
    ids_t = torch.tensor((ids * repeats)[: prompt.shape[0]], device=prompt.device)
    prompt.copy_(model.get_input_embeddings()(ids_t).to(prompt.dtype))


def _merge_dequantized(model: PeftModel) -> PreTrainedModel:
    """Save the active adapter, strip it, de-quantize the base (transformers' `dequantize`), re-load the
    adapter onto the full-precision base and merge there."""
    name = model.active_adapter
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, selected_adapters=[name])
        saved = Path(tmp) if name == "default" else Path(tmp) / name  # peft's layout for named adapters
        base = model.unload().dequantize()
        return PeftModel.from_pretrained(base, str(saved)).merge_and_unload()


def check_target_modules(model: nn.Module, targets: list[str] | str | None) -> None:
    """Fail before injection, listing what exists: peft's own error names neither. None takes peft's
    per-architecture default; a string is peft's regex, matched against whole module paths (so `q` matches
    no T5 module: a bare name is meant as the list `[q]`); peft's shorthand `all-linear` is no regex."""
    if targets is None or targets == "all-linear":
        return
    available = sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules() if _is_linear(m)})
    if isinstance(targets, str):
        try:
            matched = any(re.fullmatch(targets, name) for name, _ in model.named_modules())
        except re.error as err:
            raise ValueError(
                f"method.peft_config.target_modules={targets!r} is not a regular expression ({err})"
            ) from None
        if not matched:
            raise ValueError(
                f"method.peft_config.target_modules={targets!r} matches no module: a string is a regular "
                f"expression over whole module paths (e.g. '.*\\.{targets}'); a list names modules: "
                f"target_modules=[{targets}]. Available linear modules: {available}"
            )
        return
    missing = [t for t in targets if t not in available]
    if missing:
        hints = {t: difflib.get_close_matches(t, available, n=3) for t in missing}
        raise ValueError(
            f"method.peft_config.target_modules: {missing} not in the model; close matches {hints}; "
            f"available linear modules: {available}"
        )


def _is_linear(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or type(module).__name__ in ("Conv1D", "Linear4bit", "Linear8bitLt")


def cache_keyword() -> str:
    """The keyword peft hands a prefix's keys and values to the encoder with: `past_key_values` up to peft
    0.21, the name transformers uses since peft 0.22 (`cache` from transformers 5.24)."""
    try:
        from peft.import_utils import get_transformers_cache_name
    except ImportError:
        return "past_key_values"
    return get_transformers_cache_name()


def expose_past_key_values(model: PeftModel) -> None:
    """Prefix tuning of a classifier: peft hands the virtual keys and values to the encoder as
    `past_key_values`, after checking that the encoder's forward names that parameter. transformers 5
    renamed it `cache` (BERT, RoBERTa; the old keyword still works), so the check fails on a model that
    would run: give this model's encoder a forward that names it again. An encoder that takes neither
    cannot hold a prefix: said here, when the method is applied, not at the first step."""
    config = model.peft_config[model.active_adapter]
    if config.peft_type.value != "PREFIX_TUNING" or config.task_type != "SEQ_CLS":
        return  # language models take `past_key_values` from peft through their own forward
    backbone = model.base_model.get_submodule(model.transformer_backbone_name)
    params = inspect.signature(backbone.forward).parameters
    if cache_keyword() in params:
        return  # the keyword this peft passes is taken as it is (peft >= 0.22 passes `cache` to transformers >= 5.24)
    if "cache" not in params:
        raise ValueError(
            f"method.peft_config (PrefixTuningConfig): {type(backbone).__name__} takes no past keys and values "
            "(its forward has neither `past_key_values` nor `cache`), where prefix tuning puts its virtual "
            "tokens; use prompt_tuning, or another method"
        )
    forward = backbone.forward

    def forward_with_past_key_values(*args: Any, past_key_values: Any = None, **kwargs: Any) -> Any:
        if past_key_values is not None:
            kwargs["cache"] = past_key_values
        return forward(*args, **kwargs)

    backbone.forward = forward_with_past_key_values
