"""Record tests/data/seed0_before_refactor.json from the code as it is now:
``python -m tests.record_unchanged [--full]`` runs the seed-0 ce, kd and pskd runs of
tests/test_refactor_unchanged.py (``--full`` adds the cpu-smoke ones, minutes each) with
two threads and writes their metrics and configuration hashes. Run it only when a change
is meant to alter what a run computes, and say why in the commit."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from tests.cli_helpers import invoke
from tests.test_refactor_unchanged import FAST_ARGS

FIXTURE = Path(__file__).parent / "data" / "seed0_before_refactor.json"


class _Capture:
    """What ``invoke`` needs of pytest's capsys."""

    def readouterr(self) -> tuple[str, str]:
        return "", ""


def record(method: str, args: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as out:
        outcome = invoke(_Capture(), "run", method, "--dataset", "synthetic", "--seed", "0",
                         *args, "--out", out, "--log-format", "quiet")  # fmt: skip
        assert outcome.code == 0, f"{method} failed"
        result = json.loads(next(Path(out).rglob("result.json")).read_text())
    return {"metrics": result["metrics"], "config_hash": result["config_hash"]}


def main(full: bool) -> None:
    torch.set_num_threads(2)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()  # fmt: skip
    old = json.loads(FIXTURE.read_text())
    data = {
        "recorded_with": f"commit {commit}, python -m tests.record_unchanged",
        "fast": {m: record(m, a) for m, a in FAST_ARGS.items()},
        "full": {m: record(m, []) for m in FAST_ARGS} if full else old["full"],
    }
    FIXTURE.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main("--full" in sys.argv[1:])
