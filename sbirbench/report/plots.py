"""Small charts drawn with Pillow (no plotting dependency): bars and lines."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

PALETTE = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
]


def font(size: int = 13) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType sizes
        return ImageFont.load_default()


def bar_chart(
    labels: list[str],
    values: list[float],
    title: str,
    *,
    width: int = 760,
    row: int = 22,
    maximum: float = 1.0,
) -> Image.Image:
    """Horizontal bars, one per label, with the value written beside each bar."""
    left, top, right = 190, 40, 70
    image = Image.new("RGB", (width, top + row * len(labels) + 20), "white")
    draw = ImageDraw.Draw(image)
    small, big = font(12), font(15)
    draw.text((10, 10), title, fill="black", font=big)
    span = width - left - right
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + i * row
        draw.text((10, y + 3), label[:28], fill="black", font=small)
        length = int(span * max(0.0, min(value, maximum)) / maximum)
        draw.rectangle([left, y + 3, left + max(length, 1), y + row - 4], fill=PALETTE[0])
        draw.text((left + length + 6, y + 3), f"{value:.3f}", fill="black", font=small)
    draw.line([left, top - 4, left, top + row * len(labels)], fill="gray")
    return image


def line_chart(
    series: dict[str, list[float]],
    title: str,
    *,
    boundaries: Sequence[int] = (),
    names: Sequence[str] = (),
    width: int = 760,
    height: int = 380,
) -> Image.Image:
    """Lines over a shared x axis (epochs); vertical lines mark ``boundaries`` (stage
    changes) and ``names`` label the spans between them."""
    left, top, right, bottom = 60, 40, 160, 40
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    small, big = font(12), font(15)
    draw.text((10, 10), title, fill="black", font=big)
    values = [v for points in series.values() for v in points if v == v]
    count = max((len(points) for points in series.values()), default=0)
    if not values or count == 0:
        draw.text((left, top + 20), "no training history", fill="gray", font=small)
        return image
    low, high = min(values), max(values)
    if high == low:
        high = low + 1.0
    plot_w, plot_h = width - left - right, height - top - bottom

    def xy(index: float, value: float) -> tuple[float, float]:
        x = left + (plot_w * index / max(count - 1, 1))
        y = top + plot_h * (1 - (value - low) / (high - low))
        return x, y

    draw.rectangle([left, top, left + plot_w, top + plot_h], outline="gray")
    for tick in range(5):
        value = low + (high - low) * tick / 4
        _, y = xy(0, value)
        draw.line([left - 4, y, left, y], fill="gray")
        draw.text((5, y - 7), f"{value:.3g}", fill="black", font=small)
    for boundary in boundaries:
        x, _ = xy(boundary - 0.5, low)
        draw.line([x, top, x, top + plot_h], fill=(180, 180, 180))
    spans = [0, *boundaries, count]
    for name, start, stop in zip(names, spans, spans[1:], strict=False):
        x, _ = xy((start + stop - 1) / 2, low)
        draw.text((x - 20, top + plot_h + 8), name, fill="black", font=small)
    for i, (name, points) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        coords = [xy(j, v) for j, v in enumerate(points) if v == v]
        if len(coords) > 1:
            draw.line(coords, fill=color, width=2)
        for x, y in coords:
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=color)
        draw.rectangle(
            [width - right + 12, top + 18 * i + 4, width - right + 24, top + 18 * i + 14],
            fill=color,
        )
        draw.text((width - right + 30, top + 18 * i + 1), name, fill="black", font=small)
    return image
