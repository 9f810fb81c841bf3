"""Step 5 of a run: the :class:`Trainer` trains every stage a method declares, resumably.

AdamW with per-group learning-rate multipliers (no weight decay on biases and norms),
linear warm-up then cosine learning rate, cosine weight decay, gradient clipping,
accumulation and autocast (:mod:`.loop`). A checkpoint is written atomically after every
epoch and on Ctrl-C; a non-finite loss stops the run and keeps the last good checkpoint.
A stage that declares a ``reuse_key`` is trained once per configuration: a later run
with the same key (and backbone, data, seed, world size, precision) loads its output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sbirbench.config import config_hash
from sbirbench.console import Output
from sbirbench.data.transforms import train_transform
from sbirbench.interfaces import Method, SBIRDataset, Stage
from sbirbench.runtime import checkpoint
from sbirbench.runtime.distributed import Context, agree, broadcast_object
from sbirbench.runtime.progress import TrainingProgress

from ..store import RunStore, stage_outputs
from .loop import StageLoop
from .records import Position, StageReport, Tally
from .signals import Interrupted, StopFlag, TrainingStopped
from .streams import steps_per_epoch


@dataclass
class TrainerOptions:
    precision: str = "fp32"
    workers: int = 0
    log_every: int = 10
    seed: int = 0
    #: What besides a stage's own reuse key decides its result (backbone, data, seed, ...).
    run_identity: dict[str, Any] = field(default_factory=dict)
    #: Where earlier runs are searched for reusable stage outputs (None: no reuse).
    reuse_root: Path | None = None
    #: Called on every rank after each epoch of the last stage (best-epoch selection);
    #: what it returns joins the epoch's history record.
    after_epoch: Callable[[int], dict[str, Any]] | None = None
    #: Called on rank 0 with each epoch's history record and its number over all stages
    #: (experiment trackers).
    on_record: Callable[[int, dict[str, Any]], None] | None = None


class Trainer:
    """Trains every stage of a method; the run folder (``store``) is optional."""

    def __init__(
        self,
        method: Method,
        dataset: SBIRDataset,
        context: Context,
        output: Output,
        options: TrainerOptions | None = None,
        store: RunStore | None = None,
    ) -> None:
        self.method, self.dataset, self.context, self.output = method, dataset, context, output
        self.options = options or TrainerOptions()
        self.store = store
        self.stages = method.stages()
        for stage in self.stages:  # before any training: a later stage's batch may not fit
            steps_per_epoch(stage, dataset, context.world)
        self.modules = checkpoint.method_modules(method, self.stages)
        for module in self.modules.values():
            module.to(context.device)
        self.history: list[dict[str, Any]] = []
        self.reused: dict[str, str] = {}  # stage -> the run whose output it reused
        #: Training seconds of the epochs that earlier processes of a resumed run trained.
        self.earlier_seconds = 0.0
        self.unreadable: set[str] = set()
        self._reported_unreadable = 0

    # ------------------------------------------------------------------ whole run
    def train(self, resume_from: dict[str, Any] | None = None) -> list[StageReport]:
        """Train all stages (from a checkpoint's position when resuming)."""
        position = Position()
        if resume_from is not None:
            checkpoint.load_module_states(self.modules, resume_from["modules"])
            position = Position(**resume_from["position"])
            self.history = list(resume_from.get("history", []))
            self.earlier_seconds = sum(h["seconds"] for h in self.history)
        if self.store is not None:  # drop what an interrupted process wrote after its checkpoint
            self.store.rewrite_history(self.history)
        # said before any stage trains, not when its turn comes; a resumed run's finished
        # stages are not said again
        for stage in self.stages[position.stage :]:
            if stage.settings.epochs == 0:
                self.output.warn(f"stage {stage.name} has 0 epochs: it trains nothing")
        for index, stage in enumerate(self.stages):
            if index < position.stage:
                continue
            start = position if index == position.stage else Position(index)
            state = resume_from if resume_from and index == position.stage else None
            if not (state is None and start == Position(index) and self._reuse(stage)):
                self._train_stage(index, stage, start, state)
                self._synchronise()
            self._save_stage_output(stage)
        return self.reports()

    def reports(self) -> list[StageReport]:
        """Training time and images per stage, from the history, so a resumed run counts
        the epochs of every process that worked on it (a reused stage: zero)."""
        out = []
        for stage in self.stages:
            epochs = [h for h in self.history if h["stage"] == stage.name]
            seconds = sum(h["seconds"] for h in epochs)
            images = round(sum(h["images_per_second"] * h["seconds"] for h in epochs))
            out.append(StageReport(stage.name, seconds, images))
        return out

    # ------------------------------------------------------------------ one stage
    def _train_stage(
        self, index: int, stage: Stage, start: Position, state: dict[str, Any] | None
    ) -> None:
        opts, ctx = self.options, self.context
        loop = StageLoop(
            stage,
            self.dataset,
            ctx,
            train_transform(stage.settings.augment, self.method.input_spec()),
            seed=opts.seed,
            workers=opts.workers,
            precision=opts.precision,
        )
        epochs = stage.settings.epochs
        if state is not None and state["position"]["epoch"] < epochs:
            loop.load_state(state)
            checkpoint.set_rng_state(state["rng"])
        progress = TrainingProgress(
            self.output,
            stage.name,
            epochs,
            loop.steps,
            start.epoch * loop.steps + start.step,
            opts.log_every,
        )
        self.output.info(loop.describe())
        partial = state.get("partial") if state is not None else None
        last_stage = index == len(self.stages) - 1
        try:
            with StopFlag() as stop:
                for epoch in range(start.epoch, epochs):
                    first = start.step if epoch == start.epoch else 0
                    tally = Tally.restore(partial if epoch == start.epoch else None)
                    stopped = loop.epoch(
                        epoch, first, tally, stop, progress, self._last_good(), self.unreadable
                    )
                    if stopped is not None and stopped < loop.steps:  # mid-epoch: save, stop
                        self._save(Position(index, epoch, stopped), loop, tally.snapshot())
                        raise self._interrupted(stage, epoch, stopped)
                    record = tally.record(stage.name, epoch, ctx.world)
                    self._report_unreadable()
                    if not loop.weights_finite():
                        raise TrainingStopped(
                            f"non-finite weights after stage {stage.name}, epoch {epoch + 1}; "
                            f"the last good checkpoint is {self._last_good()}"
                        )
                    if opts.after_epoch is not None and last_stage:
                        record["selection"] = opts.after_epoch(epoch)
                    self.history.append(record)
                    # the checkpoint (with this epoch's record) first, then the log line: a
                    # kill between the two is mended by the rewrite at the next start
                    self._save(Position(index, epoch + 1, 0), loop)
                    if self.store is not None:
                        self.store.append_history(record)
                    if opts.on_record is not None and ctx.main:
                        opts.on_record(len(self.history), record)
                    progress.epoch(record)
                    if stopped is not None:  # Ctrl-C on an epoch's last step
                        raise self._interrupted(stage, epoch + 1, 0)
        finally:
            progress.close()

    def _interrupted(self, stage: Stage, epoch: int, step: int) -> Interrupted:
        where = f" ({self.store.last})" if self.store else ""
        at = f"epoch {epoch + 1}, step {step + 1}" if step else f"the end of epoch {epoch}"
        return Interrupted(
            f"interrupted in stage {stage.name} at {at}; checkpoint saved{where}; "
            "continue with --resume"
        )

    def _last_good(self) -> str:
        return self.store.last_checkpoint() if self.store else "none (no run folder)"

    def _report_unreadable(self) -> None:
        if self.unreadable and len(self.unreadable) != self._reported_unreadable:
            self._reported_unreadable = len(self.unreadable)
            example = sorted(self.unreadable)[0]
            self.output.warn(
                f"{len(self.unreadable)} unreadable training images skipped so far (e.g. {example})"
            )

    def _synchronise(self) -> None:
        """Give every rank rank 0's module state. DDP keeps parameters equal, but each
        rank updates buffers such as BatchNorm statistics from its own batches."""
        if not self.context.distributed:
            return
        import torch.distributed as dist

        for module in self.modules.values():
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, src=0)

    # ------------------------------------------------------------------ files
    def _save(
        self, position: Position, loop: StageLoop, partial: dict[str, Any] | None = None
    ) -> None:
        if self.store is None:
            return
        self.store.save(
            self.store.last,
            {
                "partial": partial,
                "position": position.as_dict(),
                "modules": checkpoint.module_states(self.modules),
                **loop.state(),
                "rng": checkpoint.rng_state(),
                "history": self.history,
            },
        )

    def _stage_hash(self, stage: Stage) -> str | None:
        if stage.reuse_key is None:
            return None
        return config_hash(
            {"stage": stage.name, "key": dict(stage.reuse_key), **self.options.run_identity}
        )

    def _reuse(self, stage: Stage) -> bool:
        """Load a matching saved output of this stage from an earlier run, if any."""
        digest = self._stage_hash(stage)
        root = self.options.reuse_root
        if digest is None or root is None:
            return False
        found = None
        if self.context.main:
            found = next(
                (
                    str(path)
                    for path, record in stage_outputs(root, stage.name)
                    if record.get("hash") == digest
                ),
                None,
            )
        found = broadcast_object(found, self.context)
        if found is None or not agree(Path(found).is_file(), self.context):
            return False
        saved = checkpoint.load(Path(found))
        checkpoint.load_module_states(dict(stage.modules), saved["modules"])
        self.reused[stage.name] = str(Path(found).parent.parent)
        self.output.info(
            f"stage [bold]{stage.name}[/bold]: reusing the output of "
            f"{Path(found).parent.parent} (same stage configuration)"
        )
        return True

    def _save_stage_output(self, stage: Stage) -> None:
        if self.store is None:
            return
        digest = self._stage_hash(stage)
        record = (
            None
            if digest is None
            else {
                "hash": digest,
                "stage": stage.name,
                "key": dict(stage.reuse_key or {}),
                **self.options.run_identity,
            }
        )
        self.store.save_stage(stage.name, checkpoint.module_states(dict(stage.modules)), record)
