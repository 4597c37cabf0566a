"""What a run does once its config is composed and checked (the commands research/train.py and
research/evaluate.py stay light, so that `--help` and config errors answer before the heavy imports):

train:    Run.training -> assemble (checks, method, data, base, inject) -> zero-shot -> fit -> save -> test
evaluate: Run.evaluation -> assemble (the method loads a finished run's weights) -> test
rebuild:  a finished run's model as it was trained, for infer and merge
"""

from research.pipeline.building import assemble, build
from research.pipeline.evaluation import evaluate
from research.pipeline.rebuilding import rebuild
from research.pipeline.training import train

__all__ = ["assemble", "build", "evaluate", "rebuild", "train"]
