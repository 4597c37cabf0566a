"""The model card: a README.md in every run's weights/ folder, generated from the run record, so the
folder that `load` reads back (and `push_to_hub=<repo id>` publishes) says what it holds: base model,
method and its config, data, metrics, parameter counts, and the command that made it.

peft writes its own README.md when it saves an adapter; its metadata (library, tags, base model) is kept
and the body replaced."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi, ModelCard, ModelCardData, is_offline_mode
from huggingface_hub.utils import HFValidationError, validate_repo_id
from omegaconf import OmegaConf

CARD = "README.md"
MODEL_KEYS = ("name", "name_or_path", "gguf_file", "pretrained", "task", "dtype")
STAGES = ("zero_shot", "test")  # metric columns: the base model, then the trained one


def write_card(record: dict[str, Any], weights_dir: Path) -> Path:
    """README.md in `weights_dir` from `record` (run.json's content)."""
    path = weights_dir / CARD
    data = ModelCard.load(path).data if path.is_file() else ModelCardData()
    hub_id = _hub_id(record["config"]["model"].get("name_or_path"))
    data.base_model = hub_id  # peft writes the local path (or "") when the base is not a Hub model
    tags = {t for t in data.get("tags") or [] if hub_id or not t.startswith("base_model:")}
    data.tags = sorted(tags | {"peftlab", record["method"], record["model"], record["data"]})
    ModelCard(f"---\n{data.to_yaml()}\n---\n{render(record)}").save(path)
    return path


def render(record: dict[str, Any]) -> str:
    """The card's body (markdown)."""
    config, p = record["config"], record["params"]
    sections = [
        f"# {record['method']} on {record['model']} / {record['data']}\n\n"
        f"Weights trained with peftlab (`peftlab train`); config hash `{record['config_hash']}`.",
        "## Base model\n\n" + _base(config["model"]),
        f"## Method: {record['method']}\n\n" + _yaml(config["method"]),
        f"## Data: {record['data']}\n\n" + _yaml(config["data"]),
        "## Results\n\n" + _metrics(record["metrics"]),
        "## Parameters\n\n"
        + (f"{p['trainable']:,} trainable of {p['total']:,} ({p['trainable_pct']:.3f}%)." if p else "not recorded"),
        "## How it was made\n\n" + _command(record),
        "## Use\n\nWith peftlab, from the run folder that holds this weights/ and its run.json:\n\n"
        '```python\nfrom research.pipeline import rebuild\n\nrun = rebuild("path/to/run")  # run.model, run.tokenizer\n```',
    ]
    return "\n\n".join(sections) + "\n"


def _hub_id(name_or_path: str | None) -> str | None:
    """A Hub repo id (what `base_model` must be), not a local path."""
    if not name_or_path or Path(name_or_path).exists() or name_or_path.startswith(("/", ".", "~")):
        return None
    return name_or_path


def _base(model: dict[str, Any]) -> str:
    lines = [f"- `{k}`: `{model.get(k)}`" for k in MODEL_KEYS if model.get(k) is not None]
    if not model.get("pretrained", True):
        lines.append("- random weights, built from this config:\n\n" + _yaml(model.get("config") or {}))
    return "\n".join(lines)


def _yaml(node: dict[str, Any]) -> str:
    return "```yaml\n" + OmegaConf.to_yaml({k: v for k, v in node.items() if not k.startswith("_")}) + "```"


def _metrics(metrics: dict[str, float]) -> str:
    names = sorted({k.split("/", 1)[1] for k in metrics if k.split("/", 1)[0] in STAGES})
    if not names:
        return "No test metrics (the run did not test)."
    rows = ["| metric | base (zero-shot) | fine-tuned |", "|---|---|---|"]
    for name in names:
        cells = [_fmt(metrics.get(f"{stage}/{name}")) for stage in STAGES]
        rows.append(f"| {name} | {' | '.join(cells)} |")
    return "\n".join(rows)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _command(record: dict[str, Any]) -> str:
    overrides = record["artifacts"].get("overrides")
    versions = ", ".join(f"{k} {v}" for k, v in record["versions"].items())
    made = f"git commit `{record.get('git_commit')}`; {versions}."
    if overrides is None:
        return f"Started in-process (no command line); run.json holds the full config.\n\n{made}"
    return f"```bash\npeftlab train {shlex.join(overrides)}\n```\n\n{made}"


def check_push(repo_id: str, train: bool) -> None:
    """`push_to_hub=<repo id>`, checked before training: a push that cannot happen is refused now, not
    after the run (nothing trained, not a repo id, the Hub switched off, no network, not logged in)."""
    if not train:
        raise ValueError(f"push_to_hub={repo_id!r} with train=false: there are no trained weights to push")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ValueError(f"push_to_hub={repo_id!r} is not a Hub repo id (<user or org>/<name>): {err}") from None
    if is_offline_mode():
        raise ValueError(
            f"push_to_hub={repo_id!r}: the Hub is switched off here (HF_HUB_OFFLINE); unset it or drop push_to_hub"
        )
    try:
        HfApi().whoami()
    except Exception as err:  # no token, no network, a refused token: all mean the push would fail
        raise ValueError(
            f"push_to_hub={repo_id!r}: cannot reach the Hub as a logged-in user ({type(err).__name__}: {err}); "
            "check the network, log in with `hf auth login`, or drop push_to_hub"
        ) from None


def push(weights_dir: Path, repo_id: str) -> str:
    """weights/ exactly as saved (what `load` reads back, with its card) to a Hub model repo; its URL."""
    api = HfApi()
    url = api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=weights_dir, commit_message="peftlab: weights and model card")
    return str(url)
