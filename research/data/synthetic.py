"""A synthetic dialogue-summarization set in DialogSum's shape, generated deterministically by seed.

Each dialogue is a few `#Person1#:` / `#Person2#:` turns about one scenario (booking, shopping, ...);
its one-sentence summary is a fixed function of the slots, so a tiny model can learn it in minutes
while zero-shot it scores near zero: the quick start shows fine-tuning working, not SOTA numbers.
"""

from __future__ import annotations

import random
from collections.abc import Callable

NAMES = ["Anna", "Ben", "Carla", "David", "Emma", "Frank", "Grace", "Henry", "Ivy", "Jack"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
TIMES = ["7 am", "9 am", "noon", "2 pm", "4 pm", "6 pm", "8 pm"]
ITEMS = ["jacket", "laptop", "lamp", "bicycle", "phone", "camera", "sofa", "watch"]
COLORS = ["red", "blue", "black", "white", "green", "grey"]
PLACES = ["the library", "the station", "the park", "the cafe", "the museum", "the office"]
NUMBERS = ["two", "three", "four", "five", "six"]
GREETINGS = ["Hello.", "Hi there.", "Good morning.", "Excuse me.", "Hey."]
THANKS = ["Thanks a lot.", "Thank you.", "Great, thanks.", "Perfect, thank you."]

Example = dict[str, str]


def _booking(r: random.Random) -> tuple[list[str], str]:
    n, day, time = r.choice(NUMBERS), r.choice(DAYS), r.choice(TIMES)
    turns = [
        f"{r.choice(GREETINGS)} I'd like to book a table for {n} on {day}.",
        "Sure. What time would you like?",
        f"At {time}, please.",
        f"A table for {n} on {day} at {time} is booked.",
    ]
    return turns, f"#Person1# books a table for {n} on {day} at {time}."


def _shopping(r: random.Random) -> tuple[list[str], str]:
    item, color, price = r.choice(ITEMS), r.choice(COLORS), r.randrange(20, 400, 10)
    turns = [
        f"{r.choice(GREETINGS)} How much is this {color} {item}?",
        f"It is {price} dollars.",
        f"OK, I will take the {color} {item}.",
        "Here is your receipt.",
    ]
    return turns, f"#Person1# buys a {color} {item} for {price} dollars."


def _meeting(r: random.Random) -> tuple[list[str], str]:
    name, place, day = r.choice(NAMES), r.choice(PLACES), r.choice(DAYS)
    turns = [
        f"{r.choice(GREETINGS)} This is {name}. Can we meet on {day}?",
        "Yes. Where shall we meet?",
        f"Let's meet at {place}.",
        f"Fine, see you at {place} on {day}.",
    ]
    return turns, f"{name} and #Person2# will meet at {place} on {day}."


def _lost_item(r: random.Random) -> tuple[list[str], str]:
    item, place = r.choice(ITEMS), r.choice(PLACES)
    turns = [
        f"{r.choice(GREETINGS)} I lost my {item} at {place}.",
        f"What does your {item} look like?",
        f"It is {r.choice(COLORS)}.",
        f"We will call you if we find your {item}.",
    ]
    return turns, f"#Person1# lost a {item} at {place} and #Person2# will call if it is found."


def _doctor(r: random.Random) -> tuple[list[str], str]:
    day, time = r.choice(DAYS), r.choice(TIMES)
    symptom = r.choice(["a headache", "a cough", "a fever", "a sore throat"])
    turns = [
        f"{r.choice(GREETINGS)} I have {symptom}. Can I see the doctor?",
        f"The doctor is free on {day} at {time}.",
        f"{day} at {time} is fine.",
        "Please bring your insurance card.",
    ]
    return turns, f"#Person1# has {symptom} and will see the doctor on {day} at {time}."


SCENARIOS: list[Callable[[random.Random], tuple[list[str], str]]] = [
    _booking,
    _shopping,
    _meeting,
    _lost_item,
    _doctor,
]


def dialogue(r: random.Random) -> Example:
    turns, summary = r.choice(SCENARIOS)(r)
    if r.random() < 0.5:
        turns = [*turns, r.choice(THANKS)]
    lines = [f"#Person{1 + i % 2}#: {turn}" for i, turn in enumerate(turns)]
    return {"dialogue": "\n".join(lines), "summary": summary}


def generate(num_examples: int, seed: int) -> list[Example]:
    """`num_examples` dialogues; the same seed always gives the same list."""
    r = random.Random(seed)
    return [dialogue(r) for _ in range(num_examples)]
