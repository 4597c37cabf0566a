"""peftlab: parameter-efficient fine-tuning, measured. The layers are folders: docs/architecture.md.

This file is also peftlab's mark on the `research` name, which PyPI's `research` project shares: installed
beside peftlab it overwrites this file, and research/ours.py says so (docs/architecture.md#the-research-name)."""

DISTRIBUTION = "peftlab"  # the mark
