from pathlib import Path

import pytest

from sbirbench.errors import UserError
from sbirbench.metrics.names import parse_metric
from sbirbench.protocol.benchmarks import BenchmarkFileError, load_benchmarks

REPO = Path(__file__).resolve().parents[1]


def test_shipped_benchmarks_have_the_protocol_and_published_numbers():
    bench = load_benchmarks(REPO / "benchmarks.toml")
    assert {"synthetic", "tuberlin-30", "sketchy-21", "sketchy-25", "quickdraw-30"} <= set(
        bench.benchmarks
    )
    tub = bench.benchmark("tuberlin-30")
    assert (tub.dataset, tub.split, tub.ap, tub.metrics) == (
        "tuberlin",
        "zeroshot",
        "interpolated",
        ("map@all", "prec@100"),
    )
    pskd = [row for row in tub.published if row.method == "PSKD" and row.hash_bits is None]
    assert pskd[0].metrics == {"map@all": 0.502, "prec@100": 0.662}
    assert bench.benchmark("sketchy-21").metrics == ("map@200", "prec@200")
    assert bench.find("sketchy", "random").name == "sketchy-25"
    with pytest.raises(UserError, match="unknown benchmark 'nope'"):
        bench.benchmark("nope")


def test_syntax_error_reports_file_and_line(tmp_path):
    path = tmp_path / "b.toml"
    path.write_text('schema = 1\n\n[benchmarks.x]\ndataset = "a\n')
    with pytest.raises(BenchmarkFileError, match=rf"^{path}:4:\d+: "):
        load_benchmarks(path)


@pytest.mark.parametrize(
    ("body", "problem", "line"),
    [
        ('dataset = "d"\nsplit = "s"\nversion = 1\n', "missing key 'metrics'", 3),
        ('dataset = "d"\nsplit = "s"\nversion = 1\nmetrics = ["map@zz"]\n', "unknown metric", 3),
        (
            'dataset = "d"\nsplit = "s"\nversion = "1"\nmetrics = ["map@all"]\n',
            "'version' must be int",
            3,
        ),
        (
            'dataset = "d"\nsplit = "s"\nversion = 1\nmetrics = ["map@all"]\nap = "x"\n',
            "'ap' must be",
            3,
        ),
        (
            'dataset = "d"\nsplit = "s"\nversion = 1\nmetrics = ["map@all"]\ncolour = 1\n',
            "unknown key 'colour'",
            3,
        ),
    ],
)
def test_schema_errors_name_line_and_problem(tmp_path, body, problem, line):
    path = tmp_path / "b.toml"
    path.write_text("schema = 1\n\n[benchmarks.mine]\n" + body)
    with pytest.raises(BenchmarkFileError) as info:
        load_benchmarks(path)
    assert str(info.value).startswith(f"{path}:{line}: [benchmarks.mine]")
    assert problem in str(info.value)


def test_metric_names_are_canonical():
    assert parse_metric("mAP@All") == "map@all"
    assert parse_metric("Prec@100") == "prec@100"
    for bad in ("prec@all", "map@0", "recall@5", "map200"):
        with pytest.raises(UserError):
            parse_metric(bad)
