"""A classifier's task head apart from the method: its own rate (`optimizer.head_lr`) as a param group of its
own in a real fit, the head-only arm (`method=head`) that trains exactly the head, and the counts a methods
table reads (`params.head`, `params.trainable_without_head`) equal to their formulas on a tiny BERT."""

from __future__ import annotations

from pathlib import Path

import pytest

from research.pipeline.building import assemble
from research.pipeline.scores import described
from research.views.summary import run_table
from tests.helpers import compose_cfg, fit_on_one_batch, small

D, LABELS, LAYERS, RANK = 64, 2, 2, 8  # conf/model/tiny_bert.yaml; conf/method/lora.yaml's r
# BERT's head (architecture table): pooler Linear(d, d) + classifier Linear(d, labels), weights and biases.
POOLER, CLASSIFIER = D * (D + 1), LABELS * (D + 1)
HEAD = POOLER + CLASSIFIER
LORA = LAYERS * 2 * RANK * 2 * D  # query and value, A (r x d) + B (d x r) each


def tiny_bert(sst2: Path, *overrides: str) -> list[str]:
    return small("model=tiny_bert", "data=sst2", f"data.path={sst2}", "scheduler.warmup_ratio=0", *overrides)


def head_names(names: list[str]) -> set[str]:
    """The head's parameters by name: in place (`bert.pooler.dense.weight`) or peft's copy of it."""
    return {n for n in names if n.startswith(("classifier.", "bert.pooler.")) or ".modules_to_save." in n}


@pytest.mark.parametrize("method", ["lora", "bitfit"])
def test_the_head_trains_at_head_lr_in_its_own_group_and_the_method_at_its_lr(method: str, sst2: Path):
    built = assemble(compose_cfg(*tiny_bert(sst2, f"method={method}", "method.lr=2e-3", "optimizer.head_lr=5e-4")))
    module = built.module
    fit_on_one_batch(module, next(iter(built.datamodule.train_dataloader())), steps=2)

    names = {id(p): n for n, p in module.model.named_parameters()}
    groups = {g["name"]: g for g in module.trainer.optimizers[0].param_groups}
    assert set(groups) == {"method", "head"}
    assert (groups["method"]["initial_lr"], groups["head"]["initial_lr"]) == (2e-3, 5e-4)
    head = {names[id(p)] for p in groups["head"]["params"]}
    own = {names[id(p)] for p in groups["method"]["params"]}
    trainable = {n for n, p in module.model.named_parameters() if p.requires_grad}
    assert head == head_names(list(trainable)) and own == trainable - head and head and own
    assert sum(p.numel() for p in groups["head"]["params"]) == HEAD


def test_without_head_lr_the_head_trains_at_the_methods_rate_in_one_group(sst2: Path):
    """The default computes what every run did before the field existed: one group, the method's rate."""
    built = assemble(compose_cfg(*tiny_bert(sst2, "method=lora", "method.lr=2e-3")))
    fit_on_one_batch(built.module, next(iter(built.datamodule.train_dataloader())), steps=1)
    (group,) = built.module.trainer.optimizers[0].param_groups
    trainable = [p for p in built.module.model.parameters() if p.requires_grad]
    assert group["initial_lr"] == 2e-3 and [id(p) for p in group["params"]] == [id(p) for p in trainable]


def test_head_only_trains_exactly_the_head_and_leaves_every_other_weight_bit_identical(sst2: Path):
    built = assemble(compose_cfg(*tiny_bert(sst2, "method=head", "method.lr=1e-2")))
    model = built.module.model
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == head_names(list(before)) and sum(before[n].numel() for n in trainable) == HEAD

    fit_on_one_batch(built.module, next(iter(built.datamodule.train_dataloader())), steps=3)
    after = dict(model.named_parameters())
    changed = {n for n in before if not after[n].detach().equal(before[n])}
    assert changed == trainable, "the head moves; every other weight stays bit-identical"


@pytest.mark.parametrize(
    ("method", "trainable_without_head"),
    [("head", 0), ("lora", LORA), ("full", None)],  # None: every weight but the head's
)
def test_the_record_counts_the_head_apart_from_the_method(method: str, trainable_without_head: int | None, sst2: Path):
    built = assemble(compose_cfg(*tiny_bert(sst2, f"method={method}")))
    params, _ = described(built)
    assert params["head"] == HEAD
    expected = built.base.params - HEAD if trainable_without_head is None else trainable_without_head
    assert params["trainable_without_head"] == expected == params["trainable"] - HEAD
    record = {"method": method, "model": "tiny_bert", "data": "sst2", "status": "completed"}
    table = run_table(record | {"metrics": {}, "params": params, "timing": {}})
    assert f"trainable without the task head {expected:,} (head {HEAD:,})" in table


def test_a_model_without_a_head_counts_none():
    params, _ = described(assemble(compose_cfg(*small("model=tiny_t5", "method=lora"))))
    assert params["head"] == 0 and params["trainable_without_head"] == params["trainable"] > 0
