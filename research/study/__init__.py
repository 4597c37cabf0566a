"""`peftlab study <name | path.yaml> [study.<field>=...] [run overrides ...]`: a comparison protocol as one command.

A study (conf/study/<name>.yaml) lists arms, each arm's learning-rate grid, the validation metric that chooses,
the seeds run at the chosen rate and the metrics reported. The command runs what is missing (protocol.py,
through Hydra's configured launcher), keeps every run's record and predictions under results/<name>/runs
(kept.py), and writes the tables there with `peftlab compare` (research/compare/study_table.py: one row per
arm with its interval, decided or not). Modules: spec (the file), choice (the rate), launch, protocol, kept.
"""
