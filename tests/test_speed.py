"""The speed levers (conf/train.yaml `speed`, data.sort_eval_by_length) change how a step or an evaluation
is computed, never what: the same loss, gradients, generated outputs and metrics as the stock path, on
tiny models built in memory. Their speed is measured by `python -m research.bench`, not here."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from research.config.schema import check_config
from research.config.speed import Speed
from research.loop.lm_loss import right_padded
from research.loop.module import FineTuneModule
from research.pipeline import build
from research.tasks import Task
from research.views.progress import progress_callbacks
from tests.helpers import compose_cfg, small

STOCK = Speed(target_logits=False, shared_prefill=False)
# A tiny Llama whose random weights give varied, uneven-length outputs (the default init answers one letter).
LLAMA = ("model=tiny_llama", "+model.config.initializer_range=0.2")


def _built(*overrides: str):
    torch.manual_seed(0)
    return build(compose_cfg(*small(*overrides)))


def _step(module: FineTuneModule, batch: dict, stock: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    module.model.zero_grad(set_to_none=True)
    torch.manual_seed(1)  # LoRA dropout draws the same masks on both paths
    loss = module(batch).loss if stock else module.loss(batch)[0]
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in module.model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize(
    "method",
    # On the head, LoRA's dropout mask covers the rows the head sees: the labelled ones only, so no dropout there.
    [
        "method=lora",
        "method=full",
        "method.peft_config.target_modules=[q_proj,v_proj,lm_head] method.peft_config.lora_dropout=0",
    ],
    ids=["lora", "full", "lora_on_the_head"],
)
def test_loss_at_labelled_positions_gives_the_stock_loss_and_gradients(method: str) -> None:
    module, datamodule = _built(*LLAMA, *method.split())
    batch = next(iter(datamodule.loader("train", 4)))
    head_rows = []
    head = module.model.get_output_embeddings()
    head.register_forward_hook(lambda _m, args, _out: head_rows.append(args[0].shape[:-1].numel()))
    module.model.train()
    loss, grads = _step(module, batch, stock=True)
    fast_loss, fast_grads = _step(module, batch, stock=False)

    labelled = int((batch["labels"][:, 1:] != -100).sum())
    mask = batch["attention_mask"]
    assert right_padded(mask) and not mask.all()  # padded rows: the decoder ran without a padding mask
    assert not right_padded(mask.flip(1))
    assert head_rows == [batch["input_ids"].numel(), labelled]  # the head ran on the labelled positions alone
    assert labelled < batch["input_ids"].numel() / 2  # the prompt is most of each sequence
    torch.testing.assert_close(fast_loss, loss, rtol=1e-6, atol=1e-6)
    assert fast_grads.keys() == grads.keys()
    assert any(grad.abs().sum() > 0 for grad in grads.values())  # (LoRA's A has none while B = 0)
    for name, grad in grads.items():
        torch.testing.assert_close(fast_grads[name], grad, rtol=1e-5, atol=1e-7, msg=name)


@pytest.mark.parametrize(
    "overrides",
    [
        (*LLAMA, "method=prompt_tuning"),  # peft prepends virtual tokens in its forward
        (*LLAMA, "method=adalora"),  # AdaLoRA's forward adds its orthogonality penalty to the loss
        ("model=tiny_t5", "method=lora"),
        (*LLAMA, "speed.target_logits=false"),
    ],
    ids=["prompt_tuning", "adalora", "seq2seq", "switched_off"],
)
def test_where_the_shortcut_does_not_apply_the_stock_forward_gives_the_loss(overrides: tuple) -> None:
    module, datamodule = _built(*overrides)
    batch = next(iter(datamodule.loader("train", 4)))
    assert module.task is not Task.CAUSAL or module.task.lm_parts(module.model, module.speed) is None
    shift = 1 if module.task == "causal" else 0  # a causal LM's position t predicts label t+1
    module.model.eval()
    with torch.no_grad():
        loss, count = module.loss(batch)
        assert float(loss) == float(module(batch).loss)
    assert count == int((batch["labels"][:, shift:] != -100).sum())


def _scored(module: FineTuneModule, datamodule, speed: Speed, sort: bool, base: bool = False):
    module.speed, datamodule.sort_eval_by_length = speed, sort
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False,
        enable_model_summary=False,
    )  # fmt: skip
    with module.scoring("zero_shot" if base else "test", base=base):
        metrics = trainer.test(module, dataloaders=datamodule.test_dataloader(), verbose=False)[0]
    return {k.split("/")[1]: v for k, v in metrics.items() if not k.endswith("eval_s")}, module.last_eval


@pytest.mark.parametrize(
    ("overrides", "base", "sort"),
    [((*LLAMA, "method=lora"), False, True), ((*LLAMA, "method=lora"), True, True),
     ((*LLAMA, "method=prompt_tuning"), False, True), (("model=tiny_t5", "method=lora"), False, True)],
    ids=["llama_lora", "llama_zero_shot", "llama_prompt_tuning", "t5_lora"],
)  # fmt: skip
def test_sorted_batches_and_shared_prefill_score_exactly_as_the_stock_evaluation(
    overrides: tuple, base: bool, sort: bool
) -> None:
    """Batches in length order, one pass for loss and prompt: same predictions, in the split's order,
    same metrics; the loss (a mean over the split's labelled tokens) agrees to float32 rounding.
    Prompt tuning takes the stock evaluation (a single pass does not apply); its answers, read behind the
    soft prompt at the positions training gave it, do not depend on how much left padding a batch has
    (research/loop/virtual_tokens.py)."""
    module, datamodule = _built(
        *overrides, "data.test_limit=10", "data.eval_batch_size=4", "generation.max_new_tokens=6"
    )
    lengths = [len(ids) for ids in datamodule.splits["test"]["input_ids"]]
    assert len(set(lengths)) > 3  # uneven lengths: sorting changes the batches

    stock, stock_rows = _scored(module, datamodule, STOCK, sort=False, base=base)
    fast, fast_rows = _scored(module, datamodule, Speed(), sort=sort, base=base)

    assert fast_rows["inputs"] == stock_rows["inputs"]  # rows are back in the split's order
    assert fast_rows["references"] == stock_rows["references"]
    assert fast_rows["predictions"] == stock_rows["predictions"]
    assert len(set(stock_rows["predictions"])) > 2, stock_rows["predictions"]  # varied outputs: a real comparison
    assert fast.pop("loss") == pytest.approx(stock.pop("loss"), rel=1e-5)
    assert fast == stock


@pytest.mark.parametrize("model", ["tiny_llama", "tiny_t5"])
def test_the_shared_pass_reads_each_evaluation_prompt_once(model: str) -> None:
    """Stock: the loss pass and generate's prefill each run the prompt; shared: one pass per batch, and
    generation goes on from it (decoder-only: one new position per step; encoder-decoder: no encoder run)."""
    module, datamodule = _built(f"model={model}", "data.num_examples=100", "data.test_limit=10",
                                "data.eval_batch_size=4", "generation.max_new_tokens=3")  # fmt: skip
    base = module.model.get_base_model()
    reader = base.get_encoder() if model == "tiny_t5" else base.get_decoder()
    passes = []
    reader.register_forward_hook(
        lambda _m, _args, kwargs, _out: passes.append(1) if kwargs["input_ids"].shape[1] > 1 else None,
        with_kwargs=True,
    )
    for speed, per_batch in ((STOCK, 2), (Speed(), 1)):
        passes.clear()
        _scored(module, datamodule, speed, sort=True)
        assert len(passes) == per_batch * 3  # 10 examples in batches of 4


def test_evaluation_batches_come_longest_first_with_their_split_index() -> None:
    _, datamodule = _built(*LLAMA, "data.num_examples=100", "data.test_limit=10")
    batches = list(datamodule.loader("test", 4))
    widths = [b["prompt_ids"].shape[1] for b in batches]
    assert widths == sorted(widths, reverse=True)
    assert sorted(i for b in batches for i in b["index"]) == list(range(10))
    datamodule.sort_eval_by_length = False
    assert [i for b in datamodule.loader("test", 4) for i in b["index"]] == list(range(10))


def test_generation_stops_as_soon_as_every_row_has_produced_eos() -> None:
    """`generate` with eos_token_id ends the batch when its last row ends: one decoder step when every
    row must answer EOS at once, all `max_new_tokens` steps when none may."""
    module, datamodule = _built(*LLAMA, "method=lora", "generation.max_new_tokens=8")
    batch = next(iter(datamodule.loader("test", 4)))
    steps = []
    module.model.get_base_model().model.register_forward_hook(lambda *_: steps.append(1))
    eos, vocab = module.tokenizer.eos_token_id, module.model.get_output_embeddings().out_features
    module.model.eval()
    for suppress, expected in (([t for t in range(vocab) if t != eos], 1), ([eos], 8)):
        steps.clear()
        module.generation["suppress_tokens"] = suppress
        module.generate(batch)
        assert len(steps) == expected


def test_an_unknown_or_non_boolean_speed_switch_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="speed.fast_please is not a speed switch; allowed: shared_prefill"):
        Speed.from_config({"fast_please": True})
    with pytest.raises(ValueError, match="speed.target_logits='yes' must be true or false"):
        Speed.from_config({"target_logits": "yes"})
    with pytest.raises(ValueError, match="speed.target_logits='yes' must be true or false"):
        check_config(compose_cfg("speed.target_logits=yes"))  # with the other fields, before anything loads


def test_evaluation_progress_counts_examples_under_the_stage_name(capsys) -> None:
    module, datamodule = _built(
        *LLAMA, "data.num_examples=100", "data.test_limit=10", "data.eval_batch_size=4", "generation.max_new_tokens=2"
    )
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_model_summary=False,
        callbacks=progress_callbacks(compose_cfg().trainer),
    )  # fmt: skip
    with module.scoring("zero_shot", base=True):
        trainer.test(module, dataloaders=datamodule.test_dataloader(), verbose=False)
    out = capsys.readouterr().out
    assert "zero_shot (examples)" in out and "examples/s" in out
    assert all(f"| {n}/10 [" in out for n in (4, 8, 10))  # batches of 4, counted in examples


def test_the_rich_bar_counts_evaluation_in_examples_too(capsys) -> None:
    module, datamodule = _built(
        *LLAMA, "data.num_examples=100", "data.test_limit=10", "data.eval_batch_size=4", "generation.max_new_tokens=2"
    )
    (bar,) = progress_callbacks(compose_cfg().trainer, "rich")
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_model_summary=False, callbacks=[bar]
    )
    with module.scoring("zero_shot", base=True):
        trainer.test(module, dataloaders=datamodule.test_dataloader(), verbose=False)
    (task,) = bar.progress.tasks
    assert (task.description, task.total, task.completed) == ("zero_shot (examples)", 10, 10)
