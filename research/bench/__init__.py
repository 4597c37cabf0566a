"""Performance benchmark: `python -m research.bench [options] [hydra overrides]`.

Per method, in a fresh subprocess (so memory peaks never mix): our training path (the real Lightning
Trainer around the `FineTuneModule` that `research.train.build` makes) interleaved with a hand-written
PyTorch loop and the Hugging Face `Trainer`, on the same model, batches, optimizer and schedule; then a
fixed generation workload. Plus batched vs per-example generation, and padding with/without length
grouping. Results: JSON (stdout and `bench.json`) and a markdown table (`bench.md`).
"""
