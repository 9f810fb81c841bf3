"""``sbirbench index`` and ``sbirbench search``: a trained run as a sketch search engine
over a photo folder."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("index")
@click.option("--run", "run", required=True, type=click.Path(path_type=Path), help="Run folder.")
@click.option(
    "--photos", required=True, type=click.Path(path_type=Path), help="Photo folder to index."
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Index file (default: <run>/index-<folder name>.npz).",
)
@click.option("--faiss", "with_faiss", is_flag=True, help="Also write a faiss HNSW graph.")
def index_command(run: Path, photos: Path, out: Path | None, with_faiss: bool) -> None:
    """Embed every photo under PHOTOS with RUN's model (again only what changed)."""
    from sbirbench.search.searcher import build_index, write_faiss

    target = out or run / f"index-{photos.resolve().name}.npz"
    counts = build_index(run, photos, target, log=lambda m: click.echo(m, err=True))
    click.echo(
        f"index: {target} ({counts['photos']} photos; {counts['embedded']} embedded, "
        f"{counts['reused']} reused)"
    )
    if with_faiss:
        click.echo(f"faiss graph: {write_faiss(target)}")


@click.command("search")
@click.option(
    "--index", "index", required=True, type=click.Path(path_type=Path), help="Index file."
)
@click.argument("sketch", type=click.Path(path_type=Path))
@click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--grid", type=click.Path(path_type=Path), help="Also write a PNG of the results.")
@click.option(
    "--engine",
    type=click.Choice(["exact", "faiss"]),
    default="exact",
    show_default=True,
    help="Exact cosine search, or the faiss graph of index --faiss (approximate, faster).",
)
def search_command(index: Path, sketch: Path, k: int, grid: Path | None, engine: str) -> None:
    """The K photos of INDEX closest to SKETCH, best first."""
    from sbirbench.search.searcher import search, write_grid

    found = search(index, sketch, k, engine)
    for rank, (path, score) in enumerate(found, 1):
        click.echo(f"{rank:3d}  {score:+.4f}  {path}")
    if grid is not None:
        write_grid(sketch, found, grid)
        click.echo(f"grid: {grid}", err=True)
