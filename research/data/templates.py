"""FLAN-style instruction templates: several phrasings of one instruction.

Training samples one phrasing per example (seeded by example index, so tokenization stays cacheable);
evaluation always uses the first, so scores never depend on which phrasing was drawn.
"""

from __future__ import annotations

import random

TEMPLATES: dict[str, list[str]] = {
    "summarize": [
        "Summarize the following conversation.\n\n{input}\n\nSummary:",
        "Briefly summarize that dialogue.\n\n{input}\n\nSummary:",
        "{input}\n\nWhat was going on in that conversation?",
        "Dialogue:\n{input}\n\nWhat is a summary of this dialogue?",
        "Here is a dialogue:\n{input}\n\nWrite a short summary!",
    ],
    "sentiment": [
        "Is the sentiment of this review positive or negative?\n\n{input}",
        "{input}\n\nDid the reviewer like the movie?",
        "Review: {input}\n\nSentiment:",
    ],
}


def check_template(name: str | None) -> None:
    if name is not None and name not in TEMPLATES:
        raise ValueError(f"data.template={name!r} is unknown; allowed: null, {', '.join(TEMPLATES)}")


def render(name: str | None, text: str, *, train: bool, seed: int, index: int) -> str:
    """The prompt for one example; `name=None` passes the text through unchanged."""
    if name is None:
        return text
    phrasings = TEMPLATES[name]
    template = random.Random(seed * 1_000_003 + index).choice(phrasings) if train else phrasings[0]
    return template.format(input=text)
