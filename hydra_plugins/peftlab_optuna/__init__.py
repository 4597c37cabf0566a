"""peftlab's Optuna sweeper (`hydra/sweeper: peftlab_optuna`), on current optuna: found by Hydra's plugin scan
of the `hydra_plugins` namespace package. See sweeper.py."""
