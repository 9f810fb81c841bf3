"""Drawing for the synthetic data set: shape classes rendered as photos and sketches.

A class is a *body* (circle, square, triangle, star, hexagon) with a *part* (antennae,
legs, handle, wheels). The unseen classes are combinations whose body and part both
appear in other, seen, classes, so what a model learns on the seen classes transfers.
Every image is a pure function of ``(seed, modality, class, index)``.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

BODIES = ("circle", "square", "triangle", "star", "hexagon")
PARTS = ("antennae", "legs", "handle", "wheels")
CLASSES = tuple(f"{body}_{part}" for body in BODIES for part in PARTS)
#: One unseen combination per body; each part is still seen with at least three bodies.
UNSEEN = ("circle_antennae", "square_legs", "triangle_handle", "star_wheels", "hexagon_antennae")
SUPERSAMPLE = 2
GENERATOR_VERSION = 2

Stroke = tuple[np.ndarray, bool]  # (points (N, 2) in unit coordinates, closed?)


def _ring(n: int, radius: float, phase: float = 0.0) -> np.ndarray:
    angles = phase + np.arange(n) * 2 * math.pi / n
    return np.stack([np.cos(angles), np.sin(angles)], axis=1) * radius


def _body(name: str) -> np.ndarray:
    if name == "circle":
        return _ring(40, 0.30)
    if name == "square":
        return np.array([[-0.27, -0.27], [0.27, -0.27], [0.27, 0.27], [-0.27, 0.27]])
    if name == "triangle":
        return _ring(3, 0.36, -math.pi / 2) + [0.0, 0.06]
    if name == "star":
        outer, inner = _ring(5, 0.36, -math.pi / 2), _ring(5, 0.16, -math.pi / 2 + math.pi / 5)
        return np.stack([outer, inner], axis=1).reshape(-1, 2)
    if name == "hexagon":
        return _ring(6, 0.31)
    raise ValueError(name)


def _part(name: str, body: np.ndarray) -> list[Stroke]:
    top, bottom = body[:, 1].min(), body[:, 1].max()
    right = body[:, 0].max()
    if name == "antennae":
        return [
            (np.array([[-0.08, top + 0.02], [-0.22, top - 0.2]]), False),
            (np.array([[0.08, top + 0.02], [0.22, top - 0.2]]), False),
            (_ring(10, 0.05) + [-0.22, top - 0.24], True),
            (_ring(10, 0.05) + [0.22, top - 0.24], True),
        ]
    if name == "legs":
        return [
            (np.array([[x, bottom - 0.02], [x * 1.3, bottom + 0.24]]), False)
            for x in (-0.17, 0.0, 0.17)
        ]
    if name == "handle":
        angles = np.linspace(-math.pi / 2, math.pi / 2, 14)
        arc = np.stack([np.cos(angles) * 0.2 + right - 0.03, np.sin(angles) * 0.19], axis=1)
        return [(arc, False)]
    if name == "wheels":
        return [(_ring(16, 0.1) + [x, bottom + 0.09], True) for x in (-0.17, 0.17)]
    raise ValueError(name)


def class_strokes(class_name: str) -> tuple[np.ndarray, list[Stroke]]:
    """The body polygon and the part strokes of a class, in unit coordinates."""
    body_name, part_name = class_name.split("_")
    body = _body(body_name)
    return body, _part(part_name, body)


def _pose(rng: np.random.Generator, size: int, scale_range: tuple[float, float]) -> np.ndarray:
    """A random 2x3 affine map from unit coordinates to pixels."""
    angle = rng.uniform(-0.45, 0.45)
    scale = rng.uniform(*scale_range) * size
    stretch = rng.uniform(0.85, 1.15)
    shift = rng.uniform(-0.06, 0.06, size=2) * size + size / 2
    c, s = math.cos(angle), math.sin(angle)
    linear = np.array([[c, -s], [s, c]]) @ np.diag([scale * stretch, scale / stretch])
    return np.concatenate([linear, shift[:, None]], axis=1)


def _apply(pose: np.ndarray, points: np.ndarray) -> list[tuple[float, float]]:
    mapped = points @ pose[:, :2].T + pose[:, 2]
    return [tuple(p) for p in mapped.tolist()]


def _texture(rng: np.random.Generator, size: int, colors: np.ndarray) -> np.ndarray:
    """Stripes, checks or dots in two colours, (size, size, 3) uint8."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    kind = rng.integers(3)
    period = rng.uniform(5, 11) * SUPERSAMPLE
    if kind == 0:
        angle = rng.uniform(0, math.pi)
        mask = np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period) > 0
    elif kind == 1:
        mask = ((xx // period) + (yy // period)) % 2 == 0
    else:
        mask = (np.sin(xx * 2 * math.pi / period) * np.sin(yy * 2 * math.pi / period)) > 0.4
    return np.where(mask[..., None], colors[0], colors[1]).astype(np.uint8)


def render_photo(class_name: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """A filled, textured, coloured object on a cluttered background, (size, size, 3)."""
    big = size * SUPERSAMPLE
    yy, xx = np.mgrid[0:big, 0:big].astype(np.float32) / big
    c0, c1 = rng.integers(40, 220, size=(2, 3))
    gx, gy = rng.uniform(-1, 1, size=2)
    ramp = np.clip(0.5 + gx * (xx - 0.5) + gy * (yy - 0.5), 0, 1)[..., None]
    canvas = Image.fromarray((c0 * (1 - ramp) + c1 * ramp).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for _ in range(rng.integers(4, 9)):  # clutter
        color = tuple(int(v) for v in rng.integers(30, 230, size=3))
        x0, y0, x1, y1 = rng.uniform(0, big, size=4)
        box = [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]
        shape = rng.integers(3)
        if shape == 0:
            draw.line([(x0, y0), (x1, y1)], fill=color, width=int(rng.integers(1, 4)) * SUPERSAMPLE)
        elif shape == 1:
            draw.ellipse(box, fill=color)
        else:
            draw.rectangle(box, outline=color, width=SUPERSAMPLE)

    body, parts = class_strokes(class_name)
    pose = _pose(rng, big, (0.7, 0.95))
    colors = rng.integers(0, 256, size=(3, 3))
    mask = Image.new("L", (big, big), 0)
    ImageDraw.Draw(mask).polygon(_apply(pose, body), fill=255)
    canvas.paste(Image.fromarray(_texture(rng, big, colors[:2])), (0, 0), mask)
    part_color = tuple(int(v) for v in colors[2])
    width = int(rng.integers(3, 5)) * SUPERSAMPLE
    for points, closed in parts:
        xy = _apply(pose, points)
        if closed:
            draw.polygon(xy, fill=part_color)
        else:
            draw.line(xy, fill=part_color, width=width, joint="curve")
    image = np.asarray(canvas.resize((size, size), Image.Resampling.BOX), dtype=np.float32)
    noisy = image + rng.normal(0, 6, size=image.shape)  # float64, as numpy promotes
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _wobble(rng: np.random.Generator, points: np.ndarray, closed: bool) -> np.ndarray:
    """Resample a stroke densely and bend it with smooth low-frequency noise."""
    if closed:
        points = np.concatenate([points, points[:1]])
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.linspace(0, arc[-1], max(8, int(arc[-1] * 120)))
    dense = np.stack([np.interp(t, arc, points[:, k]) for k in range(2)], axis=1)
    u = t / max(arc[-1], 1e-6)
    noise = np.zeros_like(dense)
    for freq in (1, 2, 3):
        amp = rng.normal(0, 0.012 / freq, size=2)
        noise += amp * np.sin(2 * math.pi * freq * u + rng.uniform(0, 2 * math.pi, size=(1, 2)).T).T
    return dense + noise


def render_sketch(class_name: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """A wobbly hand-drawn-looking black outline on white, (size, size) uint8."""
    big = size * SUPERSAMPLE
    canvas = Image.new("L", (big, big), 255)
    draw = ImageDraw.Draw(canvas)
    body, parts = class_strokes(class_name)
    pose = _pose(rng, big, (0.7, 0.95))
    strokes: list[Stroke] = [(body, True), *parts]
    if rng.random() < 0.35:  # a second, overlapping pass over the outline
        strokes.append((body * rng.uniform(0.97, 1.03), True))
    width = int(rng.integers(1, 3)) * SUPERSAMPLE
    for points, closed in strokes:
        dense = _wobble(rng, points, closed)
        if rng.random() < 0.25:  # a gap where the pen lifted
            cut = int(rng.integers(1, len(dense) - 1))
            pieces = [dense[:cut], dense[cut + max(1, len(dense) // 12) :]]
        else:
            pieces = [dense]
        for piece in pieces:
            if len(piece) >= 2:
                draw.line(_apply(pose, piece), fill=0, width=width, joint="curve")
    return np.asarray(canvas.resize((size, size), Image.Resampling.BOX), dtype=np.uint8)
