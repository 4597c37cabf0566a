"""peftlab: parameter-efficient fine-tuning, measured. The layers are folders: docs/architecture.md."""
