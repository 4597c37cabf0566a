"""A task is one object, and adding one is one place: a toy regression task (one class and one `register` line,
as research/tasks/__init__.py registers the built-in ones) trains and is scored through `train`; a metric is one
function and its `@metric` line (research/metrics). The task head trains beside every method without the
method doing anything for it. Tasks stay plain strings to configs and run records, and one object each."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from research.data.collate import Collator
from research.methods.base import Context, Method
from research.metrics import METRICS, metric
from research.models.tokenizers import byte_tokenizer
from research.pipeline import build
from research.runs.record import read_record
from research.tasks import TASKS, Task, register
from research.tasks.classification import Classification
from tests.helpers import compose_cfg, fit_on_one_batch, small, train_run


def mse(predictions: list[float], references: list[float]) -> dict[str, float]:
    return {"mse": sum((p - y) ** 2 for p, y in zip(predictions, references, strict=True)) / len(references)}


class Regression(Classification):
    """A score per text instead of a class: a head with one output (model.num_labels=1), whose loss transformers
    makes the squared error, and the score itself as the prediction."""

    metrics = ("mse",)

    def collate(self, features: list[dict[str, Any]], pad_token_id: int) -> dict[str, torch.Tensor]:
        return {"labels": torch.tensor([float(f["labels"]) for f in features])}

    def predict(self, logits: torch.Tensor) -> list[float]:
        return logits.squeeze(-1).tolist()


class FreezeAll(Method):
    """Trains one parameter of its own and freezes every other, the head included: it knows of no head."""

    def inject(self, model: nn.Module, ctx: Context) -> nn.Module:
        model.requires_grad_(False)
        model.register_parameter("own", nn.Parameter(torch.zeros(1)))
        return model


@pytest.fixture
def registries() -> Iterator[None]:
    """Registrations a test makes are undone afterwards."""
    tasks, metrics = dict(TASKS), dict(METRICS)
    yield
    for registry, before in ((TASKS, tasks), (METRICS, metrics)):
        registry.clear()
        registry.update(before)


def sst2_overrides(sst2: Path, *overrides: str) -> list[str]:
    return small("model=tiny_bert", "data=sst2", f"data.path={sst2}", *overrides)


def test_a_task_of_ones_own_is_one_class_and_one_registration(registries: None, sst2: Path, tmp_path: Path):
    metric("mse")(mse)  # as `@metric("mse")` over `mse` in research/metrics
    register(Regression("regression"))  # as research/tasks/__init__.py registers the built-in tasks
    overrides = sst2_overrides(sst2, "model.task=regression", "model.num_labels=1", "data.label_names=null")
    record = read_record(train_run(tmp_path / "run", *overrides, "method=lora"))
    assert record["config"]["model"]["task"] == "regression"
    assert set(record["metrics"]) >= {"test/loss", "test/mse"} and "test/accuracy" not in record["metrics"]
    # The squared error transformers trains on, averaged over the split, is the task's own metric.
    assert record["metrics"]["test/mse"] == pytest.approx(record["metrics"]["test/loss"], rel=1e-5)


def test_a_task_lists_only_registered_metrics(registries: None):
    with pytest.raises(ValueError, match=r"lists metrics \['mse'\] that research/metrics does not register"):
        register(Regression("regression"))


def test_a_metric_of_ones_own_is_one_function_and_one_registration(
    registries: None, sst2: Path, monkeypatch: pytest.MonkeyPatch
):
    @metric("positive_share")
    def positive_share(predictions: list[int], labels: list[int]) -> dict[str, float]:
        return {"positive_share": sum(predictions) / len(predictions)}

    monkeypatch.setattr(Classification, "metrics", (*Classification.metrics, "positive_share"))  # the task lists it
    module, datamodule = build(compose_cfg(*sst2_overrides(sst2, "method=full")))
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    scores = trainer.test(module, dataloaders=datamodule.test_dataloader(), verbose=False)[0]
    predictions = module.last_eval["predictions"]
    assert set(scores) == {"test/loss", "test/accuracy", "test/f1", "test/positive_share"}
    assert scores["test/positive_share"] == pytest.approx(sum(predictions) / len(predictions))


def head_trains(model: nn.Module) -> set[str]:
    """The task head's trainable parameters (BERT's pooler and classifier), checked to be all of the head's
    but peft's frozen `original_module` copies."""
    head = {n: p.requires_grad for n, p in model.named_parameters() if "classifier." in n or "pooler." in n}
    trainable = {n for n, grad in head.items() if grad}
    assert trainable == {n for n in head if ".original_module." not in n}
    assert len(trainable) == 4  # pooler and classifier, a weight and a bias each
    return trainable


@pytest.mark.parametrize("method", ["full", "bitfit", "adapter", "lora", "prefix_tuning"])
def test_the_head_trains_under_every_method(sst2: Path, method: str):
    module, _ = build(compose_cfg(*sst2_overrides(sst2, f"method={method}")))
    head_trains(module.model)


def test_the_head_trains_beside_a_method_that_knows_of_none(sst2: Path):
    own = ("method=full", f"method._target_={__name__}.FreezeAll", "method.name=freeze_all")
    module, datamodule = build(compose_cfg(*sst2_overrides(sst2, *own)))
    head = head_trains(module.model)
    assert {n for n, p in module.model.named_parameters() if p.requires_grad} == head | {"own"}
    before = {n: p.detach().clone() for n, p in module.model.named_parameters()}
    fit_on_one_batch(module, next(iter(datamodule.train_dataloader())), steps=2)
    changed = {n for n, p in module.model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == head  # `own` takes no part in the forward: no gradient, no step


@pytest.mark.parametrize("task", [Task.SEQ2SEQ, Task.CAUSAL], ids=str)
def test_bare_prompts_are_laid_out_and_cut_as_evaluation_does(task: Task):
    """What infer answers is encoded as the run's evaluation encoded it (a causal prompt loses its middle)."""
    tokenizer, prompts = byte_tokenizer(), ["Summarize: " + "x" * 40 + "\nSummary:", "short"]
    batch = Collator(tokenizer.pad_token_id, task)(
        [task.encode({"target": "ok"}, p, tokenizer, 24, 8) for p in prompts]
    )
    served = task.prompt_inputs(tokenizer, prompts, 24)
    assert list(served) == list(task.prompt_keys)
    assert all(torch.equal(served[key], batch[key]) for key in task.prompt_keys)


def test_a_task_is_its_name_to_configs_and_records_and_one_object_in_memory():
    assert Task.parse("causal") is Task.CAUSAL and Task.CAUSAL == "causal"
    assert pickle.loads(pickle.dumps(Task.CAUSAL)) is Task.CAUSAL and copy.deepcopy(Task.SEQ2SEQ) is Task.SEQ2SEQ
    assert json.dumps({"task": Task.CLASSIFICATION}) == '{"task": "classification"}'
