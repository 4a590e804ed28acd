"""Small JPEG thumbnails of example images, as ``data:`` URIs (deterministic bytes)."""

from __future__ import annotations

import base64
import io

THUMB_SIZE = 96


def thumbnail_uri(path: str, size: int = THUMB_SIZE) -> str | None:
    """A ``data:image/jpeg;base64,...`` URI of the image downscaled to fit ``size`` pixels.

    Returns:
        None when the file is missing or cannot be decoded.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.draft("RGB", (size, size))  # fast JPEG decode at reduced scale
            small = _flatten(image)
            small.thumbnail((size, size), Image.Resampling.LANCZOS)
            buffer = io.BytesIO()
            small.save(buffer, format="JPEG", quality=82, optimize=False, progressive=False)
    except Exception:  # noqa: BLE001 -- PIL raises many error types for bad files
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _flatten(image):  # type: ignore[no-untyped-def]
    """RGB copy of the first frame, transparency composited on white."""
    from PIL import Image

    image.seek(0)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")
