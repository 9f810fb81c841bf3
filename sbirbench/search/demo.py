"""``sbirbench demo``: draw a sketch in the browser and see the photos a trained run finds.

A local gradio page (the ``[demo]`` extra): a sketch pad (black brush on white), a
Search button, and a gallery of the index's top k photos with their cosine scores. It
serves on 127.0.0.1 unless told otherwise, and serves no files but the index's photos.
The drawing is taken as an RGB image on white (gradio fills the transparent canvas
white) and goes through the run's own evaluation transform, as a sketch file given to
``sbirbench search`` does.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from PIL import Image

from sbirbench.errors import UserError
from sbirbench.search.searcher import Searcher

#: The page's element ids (the browser test finds them by these).
SKETCH_ID, BUTTON_ID, GALLERY_ID, STATUS_ID = "sketch", "search", "results", "status"


def require_gradio() -> Any:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing leaves the machine
    try:
        import gradio
    except ImportError:
        raise UserError("sbirbench demo needs gradio: pip install 'sbirbench[demo]'") from None
    return gradio


def drawn_sketch(value: dict[str, Any] | None) -> Image.Image | None:
    """The drawing of a sketch pad's value (its composite), or None for a blank canvas."""
    composite = (value or {}).get("composite")
    if composite is None:
        return None
    image = composite if isinstance(composite, Image.Image) else Image.fromarray(composite)
    image = image.convert("RGB")
    return None if np.asarray(image).min() == 255 else image


def find_photos(
    searcher: Searcher, value: dict[str, Any] | None, k: int
) -> tuple[list[tuple[str, str]], str]:
    """What the page shows for a sketch pad's value: (photo path, caption) pairs, best
    first, and a status line."""
    sketch = drawn_sketch(value)
    if sketch is None:
        return [], "Draw a sketch first."
    found = searcher.query(sketch, k)
    shown = [(path, f"{score:+.3f}  {os.path.relpath(path, searcher.photos)}")
             for path, score in found]  # fmt: skip
    return shown, f"Top {len(found)} of {len(searcher.index.paths)} photos."


def build_demo(searcher: Searcher, k: int) -> Any:
    """The page, as a gradio ``Blocks`` ready to launch."""
    gr = require_gradio()

    def find(value: dict[str, Any] | None) -> tuple[list[tuple[str, str]], str]:
        return find_photos(searcher, value, k)

    with gr.Blocks(title="sbirbench: sketch search") as page:
        gr.Markdown(
            "### Sketch search\nPick the brush (left of the canvas), draw, then press "
            f"Search: the {k} closest of "
            f"{len(searcher.index.paths)} photos under `{searcher.photos}`, ranked by "
            f"the model of `{searcher.index.meta['run']}`."
        )
        with gr.Row():
            pad = gr.Sketchpad(
                label="Sketch",
                image_mode="RGB",
                type="pil",
                canvas_size=(400, 400),
                fixed_canvas=True,
                layers=False,
                transforms=(),
                brush=gr.Brush(colors=["#000000"], color_mode="fixed", default_size=6),
                elem_id=SKETCH_ID,
            )
            with gr.Column():
                gallery = gr.Gallery(label="Photos found", columns=5, elem_id=GALLERY_ID)
                status = gr.Markdown(elem_id=STATUS_ID)
        button = gr.Button("Search", variant="primary", elem_id=BUTTON_ID)
        button.click(find, inputs=pad, outputs=[gallery, status])
    return page


def serve(searcher: Searcher, k: int, host: str, port: int) -> None:
    """Serve the page until Ctrl-C."""
    page = build_demo(searcher, k)
    try:
        page.launch(
            server_name=host,
            server_port=port,
            allowed_paths=[str(searcher.photos)],
            quiet=True,
            show_error=True,
        )
    except OSError as exc:  # the port is taken, or the address is not this machine's
        raise UserError(f"cannot serve on {host}:{port}: {exc}") from None
