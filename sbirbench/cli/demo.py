"""``sbirbench demo``: a drawing page that searches an index with a trained run."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("demo")
@click.option(
    "--index", "index", required=True, type=click.Path(path_type=Path), help="Index file."
)
@click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to serve on (0.0.0.0 shows the page to the network).",
)
@click.option("--port", type=click.IntRange(1, 65535), default=7860, show_default=True)
@click.option("--engine", type=click.Choice(["exact", "faiss"]), default="exact", show_default=True)
def demo_command(index: Path, k: int, host: str, port: int, engine: str) -> None:
    """Draw a sketch in the browser and see the K closest photos of INDEX."""
    from sbirbench.search.demo import require_gradio, serve
    from sbirbench.search.searcher import Searcher

    require_gradio()  # a missing extra is one line before the model loads
    searcher = Searcher(index, engine)
    click.echo(f"demo: http://{host}:{port}  ({len(searcher.index.paths)} photos; Ctrl-C stops)")
    serve(searcher, k, host, port)
