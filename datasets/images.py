"""Opening images as RGB, whatever their mode."""

from __future__ import annotations

from PIL import Image

from sbirbench.runtime.paths import IMAGE_SUFFIXES

__all__ = ["IMAGE_SUFFIXES", "open_rgb"]


def open_rgb(path: str) -> Image.Image:
    """Load an image fully and convert it to RGB.

    Transparent images (RGBA, LA, palette with transparency: typical sketch PNGs) are
    composited over white, so a transparent background does not turn black; CMYK and
    grayscale JPEGs and 16-bit PNGs are converted. Raises ``OSError`` when unreadable.
    """
    with Image.open(path) as image:
        image.load()
        if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            return image.point(lambda v: v / 256).convert("L").convert("RGB")
        return image.convert("RGB")
