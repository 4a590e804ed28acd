"""Problems of one sample (conversation shape, image placeholders, image files) and their counts."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence

from mmssr_plugin.data.sample import Sample

# LLaMA-Factory reads the placeholder from the same environment variable.
IMAGE_PLACEHOLDER = os.getenv("IMAGE_PLACEHOLDER", "<image>")


def validate_sample(
    sample: Sample, *, check_images: bool = True, image_cache: dict[str, str | None] | None = None
) -> tuple[str, ...]:
    """Problems that can be seen on a built sample: conversation shape, placeholders, image files.

    Row-structure problems (roles, columns) need the raw row;
    :func:`mmssr_plugin.data.convert.sample_from_row` finds those.
    """
    return tuple(
        conversation_problems(sample.turns)
        + placeholder_problems(sample.turns, sample.images)
        + image_file_problems(sample.images, check_images, image_cache)
    )


def summarize_problems(samples: Sequence[Sample]) -> dict[str, int]:
    """Count the samples per problem kind (the text before ``":"``), most frequent first, ties by name."""
    counts = Counter(kind for s in samples for kind in {p.split(":", 1)[0] for p in s.problems})
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def conversation_problems(turns: Sequence[str]) -> list[str]:
    """Empty conversation, empty turn texts, a last user turn without an answer."""
    if not turns:
        return ["empty conversation"]
    problems = [f"empty turn text: turn {number}" for number, text in enumerate(turns, 1) if not text.strip()]
    if len(turns) % 2:
        problems.append(f"odd turn count: {len(turns)} turns, the last user turn has no answer")
    return problems


def placeholder_problems(turns: Sequence[str], images: Sequence[str]) -> list[str]:
    """A mismatch between the image placeholders in the text and the images."""
    count = sum(text.count(IMAGE_PLACEHOLDER) for text in turns)
    if count == len(images):
        return []
    return [f"image placeholder mismatch: {count} {IMAGE_PLACEHOLDER} in text, {len(images)} images"]


def image_file_problems(images: Sequence[str], check_images: bool, cache: dict[str, str | None] | None) -> list[str]:
    """Missing or unreadable image files; ``cache`` keeps each path's result across samples."""
    cache = {} if cache is None else cache
    problems = []
    for path in images:
        if path not in cache:
            cache[path] = _image_problem(path, check_images)
        if cache[path]:
            problems.append(cache[path])
    return problems


def _image_problem(path: str, check_images: bool) -> str | None:
    """Why an image file cannot be used, or None. Reading checks headers and chunks, not pixels."""
    if not os.path.isfile(path):
        return f"missing image: {path}"
    if not check_images:
        return None
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.verify()
    except Exception as err:  # noqa: BLE001 -- PIL raises many error types for bad files
        return f"unreadable image: {path} ({type(err).__name__}: {err})"
    return None
