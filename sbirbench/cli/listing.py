"""``sbirbench list`` and ``sbirbench plugins``: what exists and where it comes from."""

from __future__ import annotations

import json

import click

from sbirbench.cli import debug_enabled
from sbirbench.plugins.manager import KINDS, get_plugins


def _plural(kind: str) -> str:
    return kind if kind == "weights" else f"{kind}s"


_PLURALS = {_plural(kind): kind for kind in KINDS}


@click.command("list")
@click.argument("kind", required=False, type=click.Choice(sorted(_PLURALS)))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def list_command(kind: str | None, as_json: bool) -> None:
    """List the registered methods, data sets, backbones and weight sources (or one KIND)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    plugins = get_plugins(debug=debug_enabled())
    kinds = [_PLURALS[kind]] if kind else list(KINDS)
    if as_json:
        payload = {
            _plural(k): [
                {
                    "name": e.name,
                    "aliases": list(e.aliases),
                    "description": e.description,
                    "plugin": e.origin,
                    "target": e.target_path,
                }
                for e in plugins.registry(k)
            ]
            for k in kinds
        }
        click.echo(json.dumps(payload, indent=2))
        return
    console = Console()
    for k in kinds:
        table = Table(title=_plural(k), title_justify="left", show_edge=False)
        table.add_column("name", style="bold")
        table.add_column("description")
        table.add_column("plugin", style="dim")
        for entry in plugins.registry(k):
            name = entry.name + (f" ({', '.join(entry.aliases)})" if entry.aliases else "")
            # Descriptions are plain text: "[weights]" is not rich markup.
            table.add_row(escape(name), escape(entry.description), escape(entry.origin))
        if not len(plugins.registry(k)):
            table.add_row("-", "none registered", "")
        console.print(table)


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_command(as_json: bool) -> None:
    """Show each loaded plugin: where it comes from, its version, the hooks it implements."""
    from rich.console import Console
    from rich.table import Table

    plugins = get_plugins(debug=debug_enabled())
    rows = [
        {
            "name": info.name,
            "source": info.source,
            "distribution": info.distribution,
            "version": info.version,
            "module": info.module,
            "hooks": plugins.hooks_of(info.name),
        }
        for info in sorted(plugins.infos.values(), key=lambda i: i.name)
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(show_edge=False)
    for column in ("plugin", "source", "distribution", "version", "hooks"):
        table.add_column(column)
    for info in sorted(plugins.infos.values(), key=lambda i: i.name):
        table.add_row(
            info.name,
            f"{info.source} ({info.module})",
            info.distribution,
            info.version,
            ", ".join(plugins.hooks_of(info.name)),
        )
    Console().print(table)
