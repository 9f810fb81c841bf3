"""Leaderboards and comparisons from stored results, in every format."""

from __future__ import annotations

import csv
import io
import json
import re
import statistics

import pytest

from sbirbench.protocol.benchmarks import load_benchmarks
from sbirbench.results.leaderboard import build_boards, compare
from sbirbench.results.tables import render

from .cli_helpers import invoke


def fake_result(run_id, method, seed, map_all, prec, benchmark="tuberlin-30", overrides=()):
    return {
        "schema": 1,
        "run_id": run_id,
        "method": method,
        "benchmark": benchmark,
        "benchmark_version": 1,
        "backbone": "vit_tokens",
        "preset": "tuberlin-30",
        "overrides": list(overrides),
        "seed": seed,
        "config": {
            "method": method,
            "seed": seed,
            "method_config": {"lr": 5e-4, "ila": "ila=false" not in overrides},
            "overrides": list(overrides),
        },
        "metrics": {"map@all": map_all, "prec@100": prec},
    }


RESULTS = [
    fake_result("a", "pskd", 0, 0.50, 0.66),
    fake_result("b", "pskd", 1, 0.52, 0.64),
    fake_result("c", "pskd", 2, 0.51, 0.65),
    fake_result("d", "ce", 0, 0.45, 0.60),
    fake_result("e", "pskd", 0, 0.40, 0.55, overrides=("ila=false",)),
]


def test_rows_group_seeds_with_mean_interval_and_sample_std():
    (board,) = build_boards(RESULTS, load_benchmarks())
    rows = {r.label: r for r in board.rows}
    pskd = rows["pskd [vit_tokens, preset tuberlin-30, ila=True]"]
    assert pskd.runs == 3
    assert pskd.values["map@all"].mean == pytest.approx(0.51)
    assert pskd.std["map@all"] == pytest.approx(statistics.stdev([0.50, 0.52, 0.51]))
    assert pskd.values["map@all"].half_width == pytest.approx(4.303 * 0.01 / 3**0.5, rel=1e-4)
    assert rows["ce [vit_tokens, preset tuberlin-30]"].values["map@all"].half_width is None
    assert rows["pskd [vit_tokens, preset tuberlin-30, ila=False]"].runs == 1
    published = [r for r in board.rows if r.published]
    assert any(
        r.label.startswith("PSKD (MM 22)") and r.values["map@all"].mean == 0.502 for r in published
    )
    assert board.rows[0].label.startswith("pskd [") and board.best()["map@all"] == pytest.approx(
        0.51
    )


def test_every_format():
    boards = build_boards(RESULTS, load_benchmarks())
    assert "0.510 ± 0.025" in render(boards, "rich")  # the 95% t half-width of 3 runs
    github = render(boards, "github")
    assert re.search(r"\| pskd \[vit_tokens, preset tuberlin-30, ila=True\]\s+\| 3\s+\|", github)
    assert "**0.510 ± 0.025**" in github
    assert "PSKD (MM 22) †" in github
    rows = list(csv.DictReader(io.StringIO(render(boards, "csv"))))
    pskd = next(
        r
        for r in rows
        if r["method"].startswith("pskd [vit_tokens, preset tuberlin-30, ila=True]")
        and r["metric"] == "map@all"
    )
    assert float(pskd["mean"]) == pytest.approx(0.51) and pskd["runs"] == "3"
    payload = json.loads(render(boards, "json"))
    assert payload[0]["benchmark"] == "tuberlin-30" and payload[0]["rows"][0]["runs"] == 3
    latex = render(boards, "latex")
    assert "\\begin{tabular}" in latex and "$\\pm$" in latex and "\\textbf{" in latex


def test_compare_reports_deltas_and_config_differences():
    diff = compare(RESULTS[0], RESULTS[4])
    assert diff["metrics"]["map@all"]["delta"] == pytest.approx(-0.10)
    assert set(diff["config"]) == {"overrides", "method_config.ila"}
    sklearn = {**RESULTS[4], "conventions": {"ap": "sklearn"}, "hash": {"bits": 64}}
    measured = compare({**RESULTS[0], "conventions": {"ap": "interpolated"}}, sklearn)["config"]
    assert measured["conventions.ap"] == {"a": "interpolated", "b": "sklearn"}
    assert measured["hash.bits"] == {"a": None, "b": 64}


def test_cli_leaderboard_and_compare(tmp_path, capsys):
    for result in RESULTS:
        folder = tmp_path / result["benchmark"] / result["method"] / result["run_id"]
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps(result))
    for fmt in ("rich", "github", "csv", "json", "latex"):
        outcome = invoke(capsys, "leaderboard", "--runs", str(tmp_path), "--format", fmt)
        assert outcome.code == 0 and "0.51" in outcome.out, fmt
    outcome = invoke(
        capsys,
        "compare",
        str(tmp_path / "tuberlin-30/pskd/a"),
        str(tmp_path / "tuberlin-30/pskd/e"),
        "--format",
        "json",
    )
    assert json.loads(outcome.out)["metrics"]["prec@100"]["delta"] == pytest.approx(-0.11)
    rich = invoke(
        capsys,
        "compare",
        str(tmp_path / "tuberlin-30/pskd/a"),
        str(tmp_path / "tuberlin-30/pskd/b"),
    )
    assert "seed" in rich.out and "+0.0200" in rich.out
    missing = invoke(capsys, "leaderboard", "--runs", str(tmp_path), "--benchmark", "sketchy-21")
    assert missing.code != 0 and "no results for benchmark sketchy-21" in missing.err


def test_repeats_of_a_seed_count_once_and_are_named():
    repeat = {**fake_result("a2", "pskd", 0, 0.90, 0.90), "finished": "2026-12-02T10:00:00"}
    first = {**RESULTS[0], "finished": "2026-12-01T10:00:00"}
    (board,) = build_boards([first, repeat, *RESULTS[1:3]], load_benchmarks())
    row = next(r for r in board.rows if r.method == "pskd" and r.measured)
    assert row.runs == 3 and "a" not in row.run_ids and "a2" in row.run_ids
    assert [(d.kept, d.dropped, d.seed) for d in board.duplicates] == [("a2", "a", 0)]
    assert "Repeats of a configuration and seed" in render([board], "github")


def test_labels_show_every_setting_that_differs():
    trained = fake_result("t", "ce", 0, 0.4, 0.5)
    untrained = fake_result("u", "ce", 0, 0.1, 0.1)
    trained["config"]["method_config"]["epochs"] = 10
    untrained["config"]["method_config"]["epochs"] = 0  # --epochs 0: not in the overrides
    labels = {
        r.label for r in build_boards([trained, untrained], load_benchmarks())[0].rows if r.measured
    }
    assert labels == {
        "ce [vit_tokens, preset tuberlin-30, epochs=10]",
        "ce [vit_tokens, preset tuberlin-30, epochs=0]",
    }


def test_long_values_that_differ_keep_their_labels_apart():
    rows = []
    for name in ("a", "b"):  # two teachers in one runs folder: the same 12-character prefix
        r = fake_result(name, "pskd", 0, 0.4, 0.5)
        r["config"]["method_config"]["teacher_checkpoint"] = f"/home/user/runs/{name}/teacher.pt"
        rows.append(r)
    labels = {r.label for r in build_boards(rows, load_benchmarks())[0].rows if r.measured}
    assert labels == {
        "pskd [vit_tokens, preset tuberlin-30, teacher_checkpoint=...ser/runs/a/teacher.pt]",
        "pskd [vit_tokens, preset tuberlin-30, teacher_checkpoint=...ser/runs/b/teacher.pt]",
    }


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("[1, 2]", "holds a JSON list, not an object"),
        (
            '{"schema": 2, "run_id": "x", "method": "ce", "metrics": {"map@all": 0.1}}',
            "has no 'benchmark'",
        ),
        (
            '{"schema": 2, "run_id": "x", "method": "ce", "benchmark": "b", '
            '"metrics": {"map@all": "high"}}',
            "has a metric that is not a number",
        ),
        ('{"schema": 7, "run_id": "x"}', "has result schema 7"),
        ("{truncated", "is not readable JSON"),
        (
            '{"schema": 2, "run_id": "x", "method": "ce", "benchmark": "b", '
            '"metrics": {"map@all": 0.1}, "wall_time": 3}',
            "'wall_time' that is not an object",
        ),
        (
            '{"schema": 2, "run_id": "x", "method": "ce", "benchmark": "b", '
            '"metrics": {"map@all": 0.1}, "wall_time": {"stages": {"train": "1 h"}}}',
            "has a 'wall_time' value that is not a number (stages.train='1 h')",
        ),
        (
            '{"schema": 2, "run_id": "x", "method": "ce", "benchmark": "b", '
            '"metrics": {"map@all": 0.1}, "chance": {"map@all": null}}',
            "has a 'chance' value that is not a number (map@all=None)",
        ),
    ],
)
def test_a_bad_result_file_is_skipped_and_named(tmp_path, capsys, content, reason):
    good = tmp_path / "tuberlin-30" / "pskd" / "a"
    good.mkdir(parents=True)
    (good / "result.json").write_text(json.dumps(RESULTS[0]))
    bad = tmp_path / "tuberlin-30" / "pskd" / "zz"
    bad.mkdir(parents=True)
    (bad / "result.json").write_text(content)
    outcome = invoke(capsys, "leaderboard", "--runs", str(tmp_path), "--format", "github")
    assert outcome.code == 0 and "0.500" in outcome.out
    assert f"skipped {bad / 'result.json'}: " in outcome.err and reason in outcome.err
    compared = invoke(capsys, "compare", str(good), str(bad))
    assert compared.code == 2 and reason in compared.err and "Traceback" not in compared.err


def test_unfinished_runs_are_listed_apart(tmp_path, capsys):
    run = tmp_path / "synthetic" / "ce" / "20261202-x"
    run.mkdir(parents=True)
    (run / "config.json").write_text("{}")
    outcome = invoke(capsys, "leaderboard", "--runs", str(tmp_path))
    assert outcome.code == 2 and "no results under" in outcome.err
    assert "1 unfinished run(s)" in outcome.err and str(run) in outcome.err


def test_reference_puts_the_quoted_rows_beside_the_reproduced_ones(tmp_path, capsys):
    for result in RESULTS:
        folder = tmp_path / result["benchmark"] / result["method"] / result["run_id"]
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps(result))
    outcome = invoke(capsys, "leaderboard", "--runs", str(tmp_path), "--reference",
                     "--format", "json")  # fmt: skip
    assert outcome.code == 0, outcome.err
    board = json.loads(outcome.out)["tuberlin-30 (v1)"]
    pskd = next(e for e in board if e["quoted"] == "PSKD (MM 22)")
    assert pskd["values"] == {"map@all": 0.502, "prec@100": 0.662}
    (row,) = [r for r in pskd["reproduced"] if r["runs"] == 3]
    assert row["values"]["map@all"]["mean"] == pytest.approx(0.51)
    sake = next(e for e in board if e["quoted"] == "SAKE (ICCV 19)")
    assert sake["reproduced"] == []  # not run here
    text = invoke(capsys, "leaderboard", "--runs", str(tmp_path), "--reference",
                  "--format", "github").out  # fmt: skip
    assert "| PSKD (MM 22)" in text and "(+0.008)" in text and "not reproduced here" in text
    latex = invoke(capsys, "leaderboard", "--runs", str(tmp_path), "--reference",
                   "--format", "latex")  # fmt: skip
    assert latex.code != 0 and "--reference is shown as rich, github, json" in latex.err


def test_an_evaluation_under_another_benchmark_is_a_row_there(tmp_path, capsys):
    run = fake_result("a", "pskd", 0, 0.50, 0.66)
    again = {**fake_result("a", "pskd", 0, 0.50, 0.66), "kind": "evaluation"}
    elsewhere = {
        **fake_result("a", "pskd", 0, 0.31, 0.40, benchmark="sketchy-21-fg"),
        "kind": "evaluation",
        "protocol": "fg",
        "metrics": {"acc@1": 0.31, "acc@5": 0.6},
    }
    other_data = {**elsewhere, "dataset": "quickdraw", "benchmark": "quickdraw-30"}
    other_data["protocol"] = "zs"
    for result in (run, again, elsewhere, other_data):
        result["config"]["benchmark"] = "tuberlin-30"
        result["config"]["dataset"] = "sketchy"
        result["config"]["dataset_config"] = {"split": "zeroshot"}
        result.setdefault("dataset", "sketchy")
        result["split"] = "zeroshot"
    folder = tmp_path / "tuberlin-30" / "pskd" / "a"
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps(run))
    (folder / "eval-tuberlin-30.json").write_text(json.dumps(again))
    (folder / "eval-sketchy-21-fg.json").write_text(json.dumps(elsewhere))
    (folder / "eval-quickdraw-30.json").write_text(json.dumps(other_data))
    boards = json.loads(
        invoke(capsys, "leaderboard", "--runs", str(tmp_path), "--format", "json").out
    )
    runs = {
        b["benchmark"]: [r["runs"] for r in b["rows"] if not r.get("published")] for b in boards
    }
    assert runs["tuberlin-30"][0] == 1  # the evaluation on its own benchmark is not a repeat
    assert "sketchy-21-fg" in runs
    assert "quickdraw-30" not in runs  # another data set's classes: perhaps trained on


def test_a_re_ranked_row_stands_beside_the_quoted_re_ranked_ranking(tmp_path, capsys):
    runs = [(0, 0.40, 0.43, "all"), (1, 0.42, 0.47, "all"), (0, 0.30, 0.31, 100)]
    for seed, first, second, k in runs:
        result = fake_result(f"z{seed}{k}", "zse_sbir", seed, first, 0.5, overrides=[f"k={k}"])
        result["config"]["method_config"]["rerank_k"] = k
        result["reranked_metrics"] = {"map@all": second, "prec@100": 0.55}
        result["rerank"] = {"k": k, "stage1": "cosine", "stage2": "relation", "pairs": 10}
        folder = tmp_path / "tuberlin-30" / "zse_sbir" / result["run_id"]
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps(result))
    outcome = invoke(capsys, "leaderboard", "--runs", str(tmp_path), "--reference",
                     "--format", "json")  # fmt: skip
    assert outcome.code == 0, outcome.err
    board = json.loads(outcome.out)["tuberlin-30 (v1)"]
    ret = next(e for e in board if e["quoted"] == "ZSE-SBIR (CVPR 23)")
    rn = next(e for e in board if e["quoted"] == "ZSE-SBIR (CVPR 23, re-ranked)")
    assert rn["values"] == {"map@all": 0.542, "prec@100": 0.657}
    assert sorted(r["runs"] for r in ret["reproduced"]) == [1, 2]  # both variants' first stage
    # The quoted relation ranking scored every pair: the top-100 variant is not beside it.
    (reranked,) = rn["reproduced"]
    assert reranked["values"]["map@all"]["mean"] == pytest.approx(0.45)
    assert reranked["label"].endswith("(re-ranked, all pairs)") and reranked["runs"] == 2
    board = invoke(capsys, "leaderboard", "--runs", str(tmp_path), "--format", "csv")
    assert "(re-ranked, top 100)" in board.out and "(re-ranked, all pairs)" in board.out
