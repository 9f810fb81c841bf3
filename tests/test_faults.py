"""Faults: a process killed while training or while writing a checkpoint, a full disk
while writing the result, a killed DDP worker. Nothing is lost, nothing is left behind,
the resumed run is the run that was never interrupted, and the user gets one line."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from sbirbench.runtime import atomic

from .cli_helpers import SMALL, invoke, only_run, pip_install_offline

ARGS = ["run", "ce", "--dataset", "synthetic", "--epochs", "2", *SMALL]

#: Runs the CLI with a SIGKILL planted at the AT-th optimiser step ("step"), or half-way
#: through the AT-th write of checkpoints/last.pt ("checkpoint"), as in a power cut.
KILLER = """
import os, signal, sys
from sbirbench.runtime import atomic
from sbirbench.pipeline.trainer import records

WHERE, AT = sys.argv[1], int(sys.argv[2])
count = {"n": 0}
real_write, real_add = atomic.atomic_write, records.Tally.add

def write(path, writer):
    if WHERE == "checkpoint" and str(path).endswith("last.pt"):
        count["n"] += 1
        if count["n"] == AT:
            with atomic.atomic_path(path) as tmp, open(tmp, "wb") as handle:
                handle.write(b"half a checkpoint")
                handle.flush()
                os.kill(os.getpid(), signal.SIGKILL)
    return real_write(path, writer)

def add(self, losses):
    real_add(self, losses)
    if WHERE == "step":
        count["n"] += 1
        if count["n"] == AT:
            os.kill(os.getpid(), signal.SIGKILL)

atomic.atomic_write, records.Tally.add = write, add
from sbirbench.cli import main
main(sys.argv[3:])
"""


def killed_run(tmp_path: Path, where: str, at: int, out: Path) -> None:
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    proc = subprocess.run(
        [sys.executable, str(script), where, str(at), *ARGS, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())},
    )
    assert proc.returncode == -9, proc.stderr  # killed by SIGKILL, not ended by an error


def final_state(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoint.pt", weights_only=True)["state"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, torch.Tensor]:
    """The model of the same run, never interrupted."""
    from sbirbench.cli import main

    out = tmp_path_factory.mktemp("whole")
    main([*ARGS, "--out", str(out)])
    return final_state(only_run(out))


# step 20: mid-epoch 2 (15 steps an epoch); write 2: the checkpoint at the end of epoch 2,
# the last
@pytest.mark.parametrize(("where", "at"), [("step", 20), ("checkpoint", 2)])
def test_kill_9_then_resume_gives_the_uninterrupted_model(
    where, at, tmp_path, capsys, uninterrupted
):
    out = tmp_path / "runs"
    killed_run(tmp_path, where, at, out)
    run = only_run(out)
    assert not (run / "result.json").exists()
    if where == "checkpoint":
        assert list(run.rglob(".*.tmp")), "the kill should leave a half-written file"
    resumed = invoke(capsys, *ARGS, "--out", str(out), "--resume")
    assert resumed.code == 0, resumed.err
    assert not list(run.rglob("*.tmp")), "debris of the killed write is left"
    state = final_state(run)
    assert state.keys() == uninterrupted.keys()
    assert all(torch.equal(state[k], uninterrupted[k]) for k in state)
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]  # no epoch twice
    result = json.loads((run / "result.json").read_text())
    timing = result["wall_time"]
    assert timing["earlier_processes"] > 0, "the killed process's epoch 1 is not counted"
    assert timing["training"] >= timing["earlier_processes"]
    assert timing["stages"]["train"] >= timing["earlier_processes"]
    assert result["images_per_second"]["train"] > 0


def test_a_full_disk_while_writing_the_result_keeps_everything(tmp_path, capsys, monkeypatch):
    """The disk fills half-way through result.json's bytes: the temporary file is
    removed, the run's other files are kept, and --resume writes the result."""
    real = atomic.atomic_write

    def full_disk(path, writer):
        if Path(path).name != "result.json":
            return real(path, writer)
        with atomic.atomic_path(path) as tmp, open(tmp, "wb") as handle:
            handle.write(b'{"schema": ')  # a partial file, then the disk is full
            handle.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(atomic, "atomic_write", full_disk)
    args = ["run", "ce", "--dataset", "synthetic", "--epochs", "1", *SMALL, "--out", str(tmp_path)]
    outcome = invoke(capsys, *args)
    assert outcome.code != 0
    line = outcome.err.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "cannot write" in line and "No space left on device" in line and "--resume" in line
    run = only_run(tmp_path)
    assert not (run / "result.json").exists() and not list(run.rglob("*.tmp"))
    assert (run / "checkpoint.pt").is_file() and (run / "checkpoints" / "last.pt").is_file()
    monkeypatch.undo()
    again = invoke(capsys, *args, "--resume")
    assert again.code == 0, again.err
    assert json.loads((run / "result.json").read_text())["run_id"] == run.name


KILL_RANK_ONE = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "sbirbench-kill-rank-one"
        version = "0.1.0"
        [project.entry-points.sbirbench]
        kill_rank_one = "sbirbench_kill_rank_one"
        [tool.setuptools]
        packages = ["sbirbench_kill_rank_one"]
        """,
    "sbirbench_kill_rank_one/__init__.py": """
        import os
        import signal

        import sbirbench
        from sbirbench.methods.ce import CE


        class KillRankOne(CE):
            def training_step(self, batch):
                if os.environ.get("RANK") == "1":
                    os.kill(os.getpid(), signal.SIGKILL)
                return super().training_step(batch)


        @sbirbench.hookimpl
        def register_methods(register):
            register("kill-rank-one", KillRankOne)
        """,
}


def test_a_killed_ddp_worker_ends_the_job_naming_its_rank(tmp_path):
    package = tmp_path / "package"
    for name, text in KILL_RANK_ONE.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(textwrap.dedent(text))
    env = pip_install_offline(package, tmp_path / "site")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sbirbench",
            "run",
            "kill-rank-one",
            "--dataset",
            "synthetic",
            "--nproc",
            "2",
            "--epochs",
            "1",
            *SMALL,
            "--set",
            "backbone=timm_tiny",
            "--out",
            str(tmp_path / "runs"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    # rank 0 then fails too (its peer is gone); the line leads with the cause
    assert last.startswith("error: rank 1 was killed by SIGKILL; "), last
    assert last.endswith("the messages are above")


@pytest.mark.parametrize(
    ("codes", "line"),
    [
        (
            {0: 1, 1: -9},
            "rank 1 was killed by SIGKILL; 1 other worker(s) failed after it "
            "(rank 0: exit code 1); the messages are above",
        ),
        ({1: -9}, "rank 1 was killed by SIGKILL; the messages are above"),
        (
            {0: 2, 1: 1},
            "2 of 2 workers failed (rank 0: exit code 2, rank 1: exit code 1); "
            "their messages are above",
        ),
    ],
)
def test_the_failure_line_leads_with_the_killed_rank(codes, line):
    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

    from sbirbench.cli.launch import describe_failures

    failures = {
        rank: ProcessFailure(local_rank=rank, pid=100 + rank, exitcode=code, error_file="")
        for rank, code in codes.items()
    }
    assert describe_failures(failures, 2) == line
