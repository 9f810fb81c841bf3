"""Self-contained HTML: a run's page (``sbirbench report --html``) and a sortable
leaderboard whose rows link to the run pages (``sbirbench leaderboard --format html``).

Pictures are embedded as data URIs and the sorting is a few lines of inline JavaScript,
so a page opens anywhere, offline, with nothing beside it.
"""

from __future__ import annotations

import base64
import json
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sbirbench.results.rows import Board

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222 }
table { border-collapse: collapse; margin: 0.5em 0 1.5em } td, th { padding: 3px 10px;
border-bottom: 1px solid #ddd; text-align: right } td:first-child, th:first-child
{ text-align: left } th { cursor: pointer; background: #f3f3f3 } img { max-width: 100% }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto } .note { color: #666 }
"""

FACTS = (
    "run_id", "config_hash", "method", "preset", "overrides", "dataset", "split", "benchmark",
    "protocol", "backbone", "seed", "world_size", "devices", "precision", "versions",
    "git_commit", "started", "finished", "wall_time",
)  # fmt: skip

SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, column) {
    th.addEventListener("click", function () {
      var body = table.tBodies[0], rows = Array.from(body.rows);
      var down = th.dataset.order !== "desc";
      rows.sort(function (a, b) {
        var x = a.cells[column].dataset.value || a.cells[column].textContent;
        var y = b.cells[column].dataset.value || b.cells[column].textContent;
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
        return down ? -c : c;
      });
      th.dataset.order = down ? "desc" : "asc";
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def page(title: str, body: str) -> str:
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n<body>\n{body}\n"
        f"<script>{SORT_SCRIPT}</script>\n</body></html>\n"
    )


def image_tag(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def run_page(result: dict[str, Any], pictures: dict[str, Path]) -> str:
    """One run: metrics with their conventions, retrieval grid, per-class values, PR curve,
    training curves, and the full configuration and provenance."""
    metrics = result["metrics"]
    head = "".join(f"<th>{escape(m)}</th>" for m in metrics)
    cells = "".join(f"<td>{v:.4f}</td>" for v in metrics.values())
    chance = result.get("chance") or {}
    chance_cells = "".join(
        f"<td>{chance[m]:.4f}</td>" if m in chance else "<td>-</td>" for m in metrics
    )
    per_class = sorted(result["per_class_ap"].items(), key=lambda kv: -kv[1])
    class_rows = "".join(
        f'<tr><td>{escape(k)}</td><td data-value="{v}">{v:.4f}</td></tr>' for k, v in per_class
    )
    conventions = json.dumps(result.get("conventions", {}), indent=2)
    config = json.dumps(result.get("config", {}), indent=2, default=str)
    facts = {k: result.get(k) for k in FACTS}
    title = f"{result['method']} on {result['benchmark']} (run {result['run_id']})"
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<table class="sortable"><thead><tr><th></th>{head}</tr></thead><tbody>'
        f"<tr><td>measured</td>{cells}</tr><tr><td>chance</td>{chance_cells}</tr>"
        "</tbody></table>",
        f'<p class="note">{result["queries"]} queries x {result["gallery"]} gallery; AP '
        f"convention {escape(str(result.get('ap')))}; conventions:</p>"
        f"<pre>{escape(conventions)}</pre>",
    ]
    captions = {
        "grid": "Retrieval: each row a query sketch, then its nearest photos (green: same class)",
        "pr": "Precision against recall (interpolated, mean over queries)",
        "per_class": f"{result.get('per_class_metric', 'AP')} per unseen class",
        "curves": "Training loss per epoch",
    }
    for key, caption in captions.items():
        if key in pictures:
            body.append(f"<h2>{escape(caption)}</h2>{image_tag(pictures[key], caption)}")
    body += [
        f'<h2>Per class</h2><table class="sortable"><thead><tr><th>class</th>'
        f"<th>{escape(result.get('per_class_metric', 'AP'))}</th></tr></thead>"
        f"<tbody>{class_rows}</tbody></table>",
        "<h2>Provenance</h2><ul>"
        + "".join(f"<li><b>{escape(k)}</b>: {escape(str(v))}</li>" for k, v in facts.items())
        + "</ul>",
        f"<h2>Configuration</h2><pre>{escape(config)}</pre>",
    ]
    return page(title, "\n".join(body))


def leaderboard_page(boards: list[Board]) -> str:
    """The boards as sortable tables; each run id links to its report page
    (``<run>/report/index.html``, relative to where the leaderboard was run)."""
    from sbirbench.results.tables import cell_text

    parts = ["<h1>sbirbench leaderboard</h1>"]
    for board in boards:
        head = "".join(f"<th>{escape(m)}</th>" for m in board.metrics)
        rows = []
        for row in board.rows:
            links = ", ".join(
                f'<a href="{escape(Path(d).as_posix())}/report/index.html">{escape(r)}</a>'
                for r, d in zip(row.run_ids, row.run_dirs, strict=False)
            )
            cells = "".join(
                f'<td data-value="{row.values[m].mean if m in row.values else ""}">'
                f"{escape(cell_text(row.values.get(m)))}</td>"
                for m in board.metrics
            )
            rows.append(
                f"<tr><td>{escape(row.label)}</td><td>{row.runs or ''}</td>{cells}"
                f"<td>{links}</td></tr>"
            )
        parts.append(
            f"<h2>{escape(board.title)}</h2>"
            f'<table class="sortable"><thead><tr><th>method</th><th>runs</th>{head}'
            f"<th>run reports</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )
    parts.append(
        '<p class="note">mean ± half-width of the 95% t-interval over seeds; click a column '
        "to sort; a run's report exists once `sbirbench report RUN --html` wrote it.</p>"
    )
    return page("sbirbench leaderboard", "\n".join(parts))
