"""Regenerate the bundled demo pool in data_info/mmssr_demo (deterministic; run from the repo root).

The pool is LLaVA-style: a JSON list of records with idx, image_source, image (relative to
data_info/, LLaMA-Factory's media root) and conversations. The score files under scores/ are
synthetic, in the authors' score-file format, so `mmssr-cli select` can run without a model; each
question kind has its own capability profile (KIND_SCORES), so the demo scorer trained on them
(mmssr_plugin.testing.demo_scorer) has something to learn.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw

ROOT_REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT_REPO))
from mmssr_plugin.core.taxonomy import DEFAULT_CAPABILITIES  # noqa: E402

ROOT = Path(__file__).resolve().parents[1] / "data_info"
DEMO = ROOT / "mmssr_demo"
COLORS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (230, 200, 30)}
SHAPES = ("circle", "square", "triangle")
SOURCES = ("coco", "chartqa", "geo170k(qa)", "textvqa", "scienceqa")


def _draw(path: Path, rng: random.Random, color: str, shape: str, count: int) -> None:
    img = Image.new("RGB", (48, 48), (245, 245, 240))
    draw = ImageDraw.Draw(img)
    for k in range(count):
        x, y = 4 + 14 * k, 8 + rng.randrange(20)
        box = (x, y, x + 12, y + 12)
        fill = COLORS[color]
        if shape == "circle":
            draw.ellipse(box, fill=fill)
        elif shape == "square":
            draw.rectangle(box, fill=fill)
        else:
            draw.polygon([(x, y + 12), (x + 6, y), (x + 12, y + 12)], fill=fill)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, optimize=True)


def _conversation(kind: int, color: str, shape: str, count: int, rng: random.Random) -> list[dict]:
    other = rng.choice([c for c in COLORS if c != color])
    turns: list[tuple[str, str]]
    if kind == 0:
        turns = [(f"<image>\nWhat color are the {shape}s?\nA. {other}\nB. {color}\nAnswer with the option's letter.", "B")]
    elif kind == 1:
        turns = [(f"<image>\nIs there a {other} {shape} in the picture?", "No."), (f"is the {shape} {color}", "Yes.")]
    elif kind == 2:
        turns = [(f"<image>\nHow many {shape}s are there?", str(count))]
    elif kind == 3:
        turns = [("<image>\nDescribe the image in detail.",
                  f"The picture shows {count} {color} {shape}{'s' if count > 1 else ''} on a light background, "
                  f"placed side by side from left to right at slightly different heights.")]
    elif kind == 4:
        turns = [(f"<image>\nHint: Please answer the question and provide the final answer at the end.\n"
                  f"Question: If one more {shape} is added, how many {shape}s are there?",
                  f"There are {count} {shape}s now. Adding one gives {count} + 1 = {count + 1}. The answer is {count + 1}.")]
    elif kind == 5:
        turns = [(f"<image>\nGive the bounding box of the leftmost {shape}.", "[0.08, 0.17, 0.33, 0.75]")]
    else:
        turns = [(f"<image>\nCompare the {shape}s with a {other} {shape}.",
                  f"These {shape}s are {color}, while the other one would be {other}; the shapes match.")]
    conv = []
    for human, gpt in turns:
        conv += [{"from": "human", "value": human}, {"from": "gpt", "value": gpt}]
    return conv


TEXT_ONLY = [
    ("Question: What is 12 times 7?", "84"),
    ("Translate 'good morning' into French.", "Bonjour."),
    ("Write a haiku about autumn leaves.", "Red leaves drift and fall,\nwhispering to the cold ground,\nsummer says goodbye."),
    ("Hint: think step by step.\nWhich is larger, 0.7 or 0.65?", "0.7 = 0.70 and 0.70 > 0.65, so 0.7 is larger."),
]


def main() -> None:
    rng = random.Random(0)
    records = []
    for idx in range(36):
        source = SOURCES[idx % len(SOURCES)]
        color, shape = rng.choice(sorted(COLORS)), rng.choice(SHAPES)
        count = rng.randint(1, 3)
        rel = f"mmssr_demo/images/{source}/{idx:03d}.png"
        _draw(ROOT / rel, rng, color, shape, count)
        records.append({"idx": idx, "image_source": source, "image": rel,
                        "conversations": _conversation(idx % 7, color, shape, count, rng)})
    for offset, (human, gpt) in enumerate(TEXT_ONLY):
        records.append({"idx": 36 + offset, "image_source": "text",
                        "conversations": [{"from": "human", "value": human}, {"from": "gpt", "value": gpt}]})
    (DEMO / "pool.json").write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n")
    _write_scores(records, random.Random(1))


# Synthetic labels with a story: each question kind helps some capabilities more than others.
# Rows: the 7 image question kinds of _conversation, then the 4 text-only samples; columns in
# DEFAULT_CAPABILITIES order (spatial attribute logical scene finegrained language incontext
# comparative activity causal humanities stem data ocr).
KIND_SCORES = (
    (1, 5, 1, 2, 4, 1, 1, 2, 0, 0, 0, 0, 0, 1),  # multi-choice colour question
    (2, 4, 2, 3, 3, 1, 3, 1, 0, 1, 0, 0, 1, 0),  # two-turn yes/no
    (3, 1, 3, 2, 2, 0, 0, 1, 0, 0, 0, 3, 4, 1),  # counting
    (3, 3, 1, 5, 2, 5, 1, 1, 2, 1, 1, 0, 1, 0),  # detailed description
    (2, 1, 5, 1, 1, 3, 2, 2, 0, 4, 0, 5, 3, 0),  # step-by-step arithmetic
    (5, 1, 1, 2, 4, 0, 0, 1, 1, 0, 0, 1, 2, 2),  # bounding box
    (2, 4, 3, 2, 3, 3, 1, 5, 0, 2, 0, 0, 1, 0),  # comparison
    (0, 0, 2, 0, 0, 1, 0, 0, 0, 0, 0, 3, 2, 0),  # text: multiplication
    (0, 0, 0, 0, 0, 4, 2, 0, 0, 0, 3, 0, 0, 0),  # text: translation
    (0, 0, 0, 1, 0, 5, 1, 0, 0, 0, 4, 0, 0, 0),  # text: haiku
    (0, 0, 4, 0, 0, 2, 1, 3, 0, 1, 0, 4, 3, 0),  # text: step-by-step comparison
)
KIND_STYLES = (
    ("multi-choice",),
    ("yes/no",),
    ("word/short-phrase",),
    ("detailed description",),
    ("chain-of-thought (step-by-step)", "word/short-phrase"),
    ("coordinate",),
    ("comparison", "short description"),
    ("word/short-phrase",),
    ("specified style", "short description"),
    ("specified style",),
    ("chain-of-thought (step-by-step)", "comparison"),
)


def _kind(rec: dict) -> int:
    """Row of KIND_SCORES: the question kind of an image sample, or 7 + the text sample's offset."""
    return 7 + rec["idx"] - 36 if rec["image_source"] == "text" else rec["idx"] % 7


def _write_scores(records: list[dict], rng: random.Random) -> None:
    """Per capability, the kind's score, moved one step up or down for some samples; a few
    answers are not digits (the authors' files have those too)."""
    scores = DEMO / "scores"
    scores.mkdir(parents=True, exist_ok=True)
    for column, cap in enumerate(DEFAULT_CAPABILITIES):
        lines = []
        for rec in records:
            score = KIND_SCORES[_kind(rec)][column]
            if rng.random() < 0.15:
                score = min(5, max(0, score + rng.choice([-1, 1])))
            answer = str(score)
            if rng.random() < 0.02:
                answer = rng.choice(["The instance is helpful.", "4/5", ""])
            lines.append(json.dumps({"idx": rec["idx"], "pred_response": answer}))
        (scores / f"{cap}.jsonl").write_text("\n".join(lines) + "\n")
    lines = [
        json.dumps({"idx": rec["idx"], "pred_response": ", ".join(KIND_STYLES[_kind(rec)])}) for rec in records
    ]
    (scores / "style.jsonl").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
