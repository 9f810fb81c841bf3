"""Step 4 of a run: the :class:`RunStore` owns the run folder.

``<out>/<benchmark>/<method>/<run-id>/`` holds ``result.json`` (written last),
``config.json``, ``log.txt``, ``history.jsonl`` (loss parts per epoch),
``per_query.json``, ``checkpoint.pt`` (the model, for ``sbirbench eval``),
``checkpoints/last.pt`` (training state) and ``stages/<name>.pt`` (+ ``.json``: what the
stage's output depends on, for reuse by other runs). Every file is written atomically,
and only by the process that is rank 0.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sbirbench.console import Output
from sbirbench.errors import UserError
from sbirbench.results.result import CONFIG, RESULT, read_result
from sbirbench.runtime import atomic, checkpoint


@dataclass(frozen=True)
class RunStore:
    """One run's folder. Writes happen only where ``writer`` is true (rank 0)."""

    root: Path
    writer: bool = True

    # ------------------------------------------------------------------ paths
    @property
    def run_id(self) -> str:
        return self.root.name

    @property
    def result(self) -> Path:
        return self.root / RESULT

    @property
    def config(self) -> Path:
        return self.root / CONFIG

    @property
    def log(self) -> Path:
        return self.root / "log.txt"

    @property
    def history(self) -> Path:
        return self.root / "history.jsonl"

    @property
    def per_query(self) -> Path:
        return self.root / "per_query.json"

    @property
    def model(self) -> Path:
        return self.root / "checkpoint.pt"

    @property
    def last(self) -> Path:
        return self.root / "checkpoints" / "last.pt"

    def stage(self, name: str) -> Path:
        return self.root / "stages" / f"{name}.pt"

    # ------------------------------------------------------------------ writes (rank 0)
    @contextmanager
    def _writing(self, path: Path) -> Iterator[None]:
        """A failed write (read-only folder, full disk) is one line that says how to go
        on; the previous version of the file is left as it was (atomic writes)."""
        try:
            yield
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise UserError(
                f"cannot write {path}: {reason}; the earlier files are intact; "
                "fix it and continue with --resume"
            ) from None

    def write_json(self, path: Path, payload: Any) -> None:
        if self.writer:
            with self._writing(path):
                atomic.write_json(path, payload)

    def save(self, path: Path, payload: dict[str, Any]) -> None:
        """A checkpoint-like file (``torch.save``, atomically)."""
        if self.writer:
            with self._writing(path):
                checkpoint.save(path, payload)

    def append_history(self, record: dict[str, Any]) -> None:
        if self.writer:
            with self._writing(self.history), open(self.history, "a") as handle:
                handle.write(json.dumps(record) + "\n")

    def rewrite_history(self, records: list[dict[str, Any]]) -> None:
        if self.writer:
            with self._writing(self.history):
                atomic.write_text(self.history, "".join(json.dumps(r) + "\n" for r in records))

    def clean_partial_writes(self) -> list[Path]:
        """Remove temporary files of writes that a killed process left (the atomic
        writes' ``.<name>.*.tmp``); the files they were replacing are intact."""
        removed = []
        if self.writer:
            for tmp in self.root.rglob(".*.tmp"):
                with suppress(OSError):
                    tmp.unlink()
                    removed.append(tmp)
        return removed

    def save_stage(
        self,
        name: str,
        modules: dict[str, Any],
        record: dict[str, Any] | None,
    ) -> None:
        """A stage's trained modules, and (when it declares one) what they depend on."""
        self.save(self.stage(name), {"stage": name, "modules": modules})
        if record is not None:
            self.write_json(self.stage(name).with_suffix(".json"), record)

    def last_checkpoint(self) -> str:
        """For messages: the last good training checkpoint, or that there is none yet."""
        return str(self.last) if self.last.exists() else "none (first epoch)"


def new_run(out: Path, benchmark: str, method: str, config_hash: str) -> RunStore:
    """A fresh run folder named by start time and config hash."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = out / benchmark / method
    root = base / f"{stamp}-{config_hash[:8]}"
    suffix = 1
    while root.exists():
        suffix += 1
        root = base / f"{stamp}-{config_hash[:8]}-{suffix}"
    root.mkdir(parents=True)
    return RunStore(root)


def runs_of(out: Path, benchmark: str, method: str, config_hash: str) -> list[RunStore]:
    """Earlier runs of this configuration, oldest first."""
    base = out / benchmark / method
    if not base.is_dir():
        return []
    found = []
    for root in sorted(base.iterdir()):
        try:
            saved = json.loads((root / CONFIG).read_text())
        except (OSError, ValueError):
            continue
        if saved.get("config_hash") == config_hash:
            found.append(RunStore(root))
    return found


def finished_result(
    out: Path, benchmark: str, method: str, config_hash: str
) -> dict[str, Any] | None:
    """The result of the latest finished run of this configuration, if any."""
    for run in reversed(runs_of(out, benchmark, method, config_hash)):
        if run.result.exists():
            return {**read_result(run.result), "run_dir": str(run.root)}
    return None


@dataclass(frozen=True)
class Decision:
    """Where a run goes: its folder, whether to resume from its training state, or the
    result of a finished run of the same configuration."""

    root: str
    resume_state: bool
    finished: dict[str, Any] | None


def choose_run(
    out: Path, benchmark: str, method: str, config_hash: str, resume: bool, output: Output
) -> Decision:
    """Rank 0: a new run folder, or (with ``resume``) the latest run of this
    configuration: its result if it finished, else its training state."""
    earlier = runs_of(out, benchmark, method, config_hash)
    if resume and earlier:
        latest = earlier[-1]
        if latest.result.exists():
            return Decision(
                str(latest.root), False, {**read_result(latest.result), "run_dir": str(latest.root)}
            )
        has_state = latest.last.exists()
        output.info(f"resuming {latest.root}" + ("" if has_state else " from the start"))
        return Decision(str(latest.root), has_state, None)
    if resume:
        output.info("no earlier run of this configuration: starting a new one")
    elif earlier and not earlier[-1].result.exists():
        output.info(
            f"[dim]an unfinished run of this configuration exists ({earlier[-1].root}); "
            "--resume continues it[/dim]"
        )
    elif earlier:
        output.info(
            f"[dim]this configuration already finished in {earlier[-1].root}; starting a "
            "repeat (the leaderboard counts a configuration and seed once; --resume "
            "returns the finished result)[/dim]"
        )
    return Decision(str(new_run(out, benchmark, method, config_hash).root), False, None)


def stage_outputs(out: Path, stage: str) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Saved outputs of a stage in any run under ``out``, with what they depend on."""
    for record in sorted(out.glob(f"*/*/*/stages/{stage}.json")):
        try:
            yield record.with_suffix(".pt"), json.loads(record.read_text())
        except (OSError, ValueError):
            continue
