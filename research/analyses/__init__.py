"""Analyses that hook into a run as Lightning callbacks, chosen in conf/callbacks/. Each one that
measures something keeps it in `metrics` (train.py copies those into run.json) and logs it."""

from research.analyses.examples import ExamplePredictions
from research.analyses.forgetting import ForgettingProbe
from research.analyses.soft_prompt import SoftPromptNeighbors

__all__ = ["ExamplePredictions", "ForgettingProbe", "SoftPromptNeighbors"]
