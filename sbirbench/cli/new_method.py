"""``sbirbench new-method NAME``: a working method plugin package to start from."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from string import Template

import click

from sbirbench.errors import UserError

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


def render(template: str, name: str) -> str:
    """A template from ``sbirbench/templates`` filled in for method ``name``."""
    package = "sbirbench_" + name.replace("-", "_")
    class_name = "".join(part.capitalize() for part in re.split(r"[-_]", name))
    text = resources.files("sbirbench").joinpath("templates", template).read_text()
    return Template(text).substitute(name=name, package=package, class_name=class_name)


def write_plugin(name: str, parent: Path) -> Path:
    """Write the package ``sbirbench-NAME`` under ``parent``; returns its folder."""
    if not _NAME.match(name):
        raise UserError(
            f"method name '{name}' must start with a letter and use only "
            "lower-case letters, digits, '-' and '_'"
        )
    from sbirbench.plugins.manager import get_plugins

    if name in get_plugins().methods:
        raise UserError(f"a method named '{name}' is already registered; choose another name")
    root = parent / f"sbirbench-{name}"
    if root.exists():
        raise UserError(f"{root} already exists")
    package = root / ("sbirbench_" + name.replace("-", "_"))
    files = {
        root / "pyproject.toml": "pyproject.toml.tmpl",
        root / "README.md": "README.md.tmpl",
        package / "__init__.py": "plugin.py.tmpl",
        package / "method.py": "method.py.tmpl",
        root / "tests" / f"test_{package.name}.py": "test_method.py.tmpl",
    }
    for path, template in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(template, name))
    return root


@click.command("new-method")
@click.argument("name")
@click.option(
    "--dir",
    "parent",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to create sbirbench-NAME/.",
)
def new_method_command(name: str, parent: Path) -> None:
    """Write a method plugin package: pyproject (entry point), method, test, README."""
    root = write_plugin(name, parent)
    click.echo(
        f'wrote {root}; next: pip install -e "{root}[test]" && '
        f"sbirbench run {name} --dataset synthetic"
    )
