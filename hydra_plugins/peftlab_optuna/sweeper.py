"""A Hydra sweeper on current optuna (>= 4), for `sweep=lr_search`: hydra-optuna-sweeper pins optuna < 3, whose RDB
storage breaks on SQLAlchemy 2, so a search could not be stored, shared or resumed.

Ask and tell: each batch of `n_jobs` trials is asked of the study, launched through Hydra's launcher (the job
folders are numbered by trial number) and told each job's return value, or a failed state for a job that
returned none. The study lives in `storage` (a database URL) under `study_name`, loaded if it exists, so:
- a relaunch on the same storage resumes: `n_trials` counts the study's completed trials, and a launch runs
  only the missing ones. A trial left running by a killed launch on this machine (its process gone) is run
  again first, as the same trial in the same job folder (where `resume=auto` can continue its checkpoint);
  a failed trial is not counted: a new one takes its place;
- concurrent launches on one storage share the search: each asks its own trials (optuna numbers them, the
  database keeps them apart) until the study holds `n_trials` completed trials; a launch finishes the batch it
  started, so the study can end with up to one batch per launch more. Each trial is sampled with `seed` plus
  its number: one launch draws the same values every time, and concurrent ones do not draw each other's.
A launch asks at most the trials missing when it started, so trials that keep failing cannot loop forever.
"""

# no `from __future__ import annotations`: Hydra's plugin scan runs this module outside sys.modules, where a
# dataclass cannot resolve string annotations
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, Transformer
from hydra.core.plugins import Plugins
from hydra.core.utils import JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)
RESULTS_FILE = "optimization_results.yaml"  # in the sweep folder: the study's best trial so far
LAUNCH = "launch"  # a trial's user attribute: <host>:<pid> of the launch that asked it


@dataclass
class OptunaSweeperConf:
    """`hydra.sweeper.*`; optuna is imported only when a search runs (Hydra imports every plugin at start)."""

    _target_: str = "hydra_plugins.peftlab_optuna.sweeper.OptunaSweeper"
    direction: str = "minimize"  # or maximize
    storage: str | None = None  # a database URL (sqlite:///search.db, postgresql://...); None: in memory
    study_name: str | None = None  # None: optuna names a new study (nothing to resume)
    n_trials: int = 20  # completed trials the study should hold
    n_jobs: int = 1  # trials per batch (run in parallel by a parallel launcher)
    seed: int | None = None  # of the TPE sampler, plus each trial's number
    params: dict[str, str] = field(default_factory=dict)  # key: interval(a, b), tag(log, interval(a, b)), choice(...)


ConfigStore.instance().store(group="hydra/sweeper", name="peftlab_optuna", node=OptunaSweeperConf, provider="peftlab")


def distribution(override: Override) -> Any:
    """optuna's distribution for one swept key: interval(a, b) (tag log: on a log scale; integers if both
    bounds are), or choice(...) / range(...) as categories."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if override.is_interval_sweep():
        sweep = override.value()
        log_scale = "log" in sweep.tags
        if isinstance(sweep.start, int) and isinstance(sweep.end, int):
            return IntDistribution(sweep.start, sweep.end, log=log_scale)
        return FloatDistribution(sweep.start, sweep.end, log=log_scale)
    if override.is_choice_sweep() or override.is_range_sweep():
        return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
    raise ValueError(f"{override.input_line}: the optuna sweeper searches interval(...), choice(...) or range(...)")


def suggest(trial: Any, key: str, dist: Any) -> None:
    """Draw `key` from `dist` in `trial` (optuna's public suggest calls: one per kind of distribution)."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        trial.suggest_categorical(key, dist.choices)
    elif isinstance(dist, IntDistribution):
        trial.suggest_int(key, dist.low, dist.high, log=dist.log)
    else:
        trial.suggest_float(key, dist.low, dist.high, log=dist.log)


def search_space(arguments: list[str]) -> tuple[dict[str, Any], list[str]]:
    """The swept keys' distributions, and the fixed overrides every trial gets; a later value of a key (the
    command line's, after the config's params) replaces an earlier one."""
    space: dict[str, Any] = {}
    fixed: dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(arguments):
        key = override.get_key_element()
        space.pop(key, None)
        fixed.pop(key, None)
        if override.is_sweep_override():
            space[key] = distribution(override)
        else:
            fixed[key] = override.input_line
    return space, list(fixed.values())


def rdb(url: str | None, tries: int = 10) -> Any:
    """optuna's storage at `url` (None: in memory). Launches started together on a new database all create
    its tables, and all but the first fail on the tables the first one made: they try again, and find them."""
    if url is None:
        return None
    from optuna.storages import RDBStorage
    from sqlalchemy.exc import SQLAlchemyError

    for _ in range(tries - 1):
        try:
            return RDBStorage(url)
        except SQLAlchemyError as err:
            log.info("optuna storage %s not ready (%s): trying again", url, type(err).__name__)
            time.sleep(1)
    return RDBStorage(url)


def orphans(study: Any) -> list[Any]:
    """Running trials asked by a launch on this machine whose process is gone: killed before telling."""
    from optuna.trial import TrialState

    host = socket.gethostname()
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return [t for t in running if (owner := t.user_attrs.get(LAUNCH, ":").split(":"))[0] == host and gone(owner[1])]


def gone(pid: str) -> bool:
    """Whether no process has this id (another user's process answers PermissionError: alive)."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return False


class OptunaSweeper(Sweeper):
    """`hydra/sweeper: peftlab_optuna`: the study's missing trials, batch by batch (see the module's docstring)."""

    def __init__(
        self,
        direction: str,
        storage: str | None,
        study_name: str | None,
        n_trials: int,
        n_jobs: int,
        seed: int | None,
        params: DictConfig | None,
    ) -> None:
        self.direction, self.storage, self.study_name, self.seed = direction, storage, study_name, seed
        self.n_trials, self.n_jobs = n_trials, n_jobs
        self.params = [f"{k}={v}" for k, v in (params or {}).items()]

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> None:
        import optuna

        space, fixed = search_space([*self.params, *arguments])
        folder = Path(self.config.hydra.sweep.dir)
        folder.mkdir(parents=True, exist_ok=True)  # before the study: the default sqlite file lives in it
        study = optuna.create_study(
            storage=rdb(self.storage), study_name=self.study_name, load_if_exists=True, direction=self.direction
        )
        budget = self.missing(study)
        log.info("study %s in %s: %d of %d trials to run", study.study_name, self.storage, budget, self.n_trials)
        for orphan in orphans(study)[:budget]:
            log.info("trial %d was left running by a killed launch: run again", orphan.number)
            self.run(study, [orphan.number], [orphan.params], fixed)
            budget -= 1
        while budget > 0 and (missing := self.missing(study)) > 0:
            trials = [self.ask(study, space) for _ in range(min(self.n_jobs, missing, budget))]
            self.run(study, [t.number for t in trials], [t.params for t in trials], fixed)
            budget -= len(trials)
        self.save_best(study, folder)

    def ask(self, study: Any, space: dict[str, Any]) -> Any:
        """A new trial, its values drawn by TPE seeded with `seed` + its number (numbers are the study's, so
        two launches asking at once get other numbers, hence other draws), marked with this launch."""
        from optuna.samplers import TPESampler

        trial = study.ask()
        study.sampler = TPESampler(seed=None if self.seed is None else self.seed + trial.number)
        for key, dist in space.items():
            suggest(trial, key, dist)
        trial.set_user_attr(LAUNCH, f"{socket.gethostname()}:{os.getpid()}")
        return trial

    def run(self, study: Any, numbers: list[int], params: list[dict[str, Any]], fixed: list[str]) -> None:
        """Launch a batch of trials and tell the study each job's value (failed: a job that returned none).
        Job folders are numbered by trial (the first one's number on: consecutive unless another launch
        asked in between), so a relaunch or a concurrent launch does not reuse a number of the study."""
        from optuna.trial import TrialState

        batch = [[f"{key}={value}" for key, value in trial.items()] + fixed for trial in params]
        returns = self.launcher.launch(batch, initial_job_idx=numbers[0])
        for number, ret in zip(numbers, returns, strict=True):
            value = ret.return_value if ret.status is JobStatus.COMPLETED else None
            if value is None:
                study.tell(number, state=TrialState.FAIL)
            else:
                study.tell(number, float(value))

    def missing(self, study: Any) -> int:
        """Trials still to complete: n_trials less those the study holds completed (any launch's)."""
        from optuna.trial import TrialState

        return max(0, self.n_trials - len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))))

    @staticmethod
    def save_best(study: Any, folder: Path) -> None:
        """The best trial so far, printed and saved in the sweep folder; none if no trial completed yet."""
        from optuna.trial import TrialState

        if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            log.warning("no trial of study %s has completed", study.study_name)
            return
        best = {"name": "optuna", "best_params": study.best_params, "best_value": study.best_value}
        log.info("best of study %s: %s", study.study_name, best)
        OmegaConf.save(OmegaConf.create(best), folder / RESULTS_FILE)
