"""What the teacher is asked: the prompt text and the chat-completions request of one sample."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmssr_plugin.core.prompts import format_convs
from mmssr_plugin.core.taxonomy import STYLES, Capability
from mmssr_plugin.data.sample import Sample

TEACHER_SYSTEM = (
    "You are an expert curator of training data for multimodal large language models. "
    "You answer with one JSON object and nothing else."
)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def teacher_prompt(turns: Sequence[str], capabilities: Sequence[Capability]) -> str:
    """The user text sent to the teacher with the sample's images."""
    cap_lines = "\n".join(f"- {cap.id}: {cap.keyword}" for cap in capabilities)
    example = ", ".join(f'"{cap.id}": <integer 0-5>' for cap in capabilities)
    return (
        "Rate one visual question answering (VQA) training instance: the image(s) attached above "
        "and the conversation below (<image> marks where an image appears).\n\n"
        f"Conversation:\n{format_convs(turns)}\n\n"
        "Task 1: for each capability below, rate on an integer scale of 0 to 5 how helpful this "
        "instance is for training a Multimodal Large Language Model in that capability "
        "(0: not helpful at all, 5: extremely helpful). Rate each capability on its own.\n"
        f"Capabilities (id: capability):\n{cap_lines}\n\n"
        "Task 2: name the interaction style(s) of the instance, one or more, choosing only from "
        f"these candidates, spelled exactly: {json.dumps(list(STYLES))}\n\n"
        "Answer with this JSON object only, every capability id present, scores as integers:\n"
        f'{{"scores": {{{example}}}, "styles": ["<candidate>", ...]}}'
    )


def build_request(
    sample: Sample, capabilities: Sequence[Capability], model: str, temperature: float = 0.0
) -> dict[str, Any]:
    """The chat-completions request body for one sample (images inlined as PNG data URLs).

    Raises:
        OSError, ValueError: an image cannot be read or converted.
    """
    content: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": image_data_url(path)}} for path in sample.images
    ]
    content.append({"type": "text", "text": teacher_prompt(sample.turns, capabilities)})
    return {
        "model": model,
        "messages": [
            {"role": "system", "content": TEACHER_SYSTEM},
            {"role": "user", "content": content},
        ],
        "response_format": {"type": "json_object"},
        "temperature": temperature,
    }


def image_data_url(path: str) -> str:
    """``data:image/png;base64,...`` of an image file (PNG bytes as they are, others converted)."""
    data = Path(path).read_bytes()
    if not data.startswith(_PNG_SIGNATURE):
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            if image.mode not in ("RGB", "RGBA", "L", "LA"):
                image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
        data = buffer.getvalue()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")
