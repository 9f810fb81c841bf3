"""The training engine: one code path for 1..N processes.

Each stage a method declares is trained with AdamW (per-group learning-rate multipliers,
no weight decay on biases and norms), a linear warm-up then cosine learning rate, a
cosine weight decay, gradient clipping, gradient accumulation (``no_sync`` on all but
the last micro-step under DDP) and autocast on GPUs. A step of ``batch_size`` photos is
``accum_steps`` micro-batches; a sketch micro-batch of the same size joins every
``skt_factor``-th one, and each micro-loss is divided by the number of micro-losses in
the step (as in the TVT/PSKD code). An epoch ends when either stream runs out.

Checkpoints are written atomically every epoch and on Ctrl-C; a non-finite loss stops
the run and keeps the last good checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from sbirbench import atomic, checkpoint
from sbirbench.config import config_hash
from sbirbench.console import Output
from sbirbench.data import (
    EpochSampler,
    ImageItems,
    LoadedBatch,
    batches_per_epoch,
    make_loader,
    mix_seed,
)
from sbirbench.distributed import Context, all_reduce_sum
from sbirbench.errors import UserError
from sbirbench.evaluate import autocast_context
from sbirbench.interfaces import Batch, Method, SBIRDataset, Stage
from sbirbench.optim import clip_gradients, make_adamw, param_groups, set_step_values
from sbirbench.progress import TrainingProgress
from sbirbench.results import RunPaths
from sbirbench.schedules import cosine
from sbirbench.transforms import train_transform


class TrainingStopped(UserError):
    """Training stopped early (non-finite loss); the last good checkpoint is kept."""

    exit_code = 1


class Interrupted(UserError):
    """Ctrl-C (or SIGTERM): a checkpoint was saved; ``--resume`` continues."""

    exit_code = 130


@dataclass
class Position:
    """Where training is: the stage, the epoch in it, and optimiser steps in the epoch."""

    stage: int = 0
    epoch: int = 0
    step: int = 0


@dataclass
class StageReport:
    name: str
    seconds: float = 0.0
    images: int = 0

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0


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


class _StageModule(nn.Module):
    """The trained modules of a stage as one module whose forward is the training step,
    so DDP sees every forward call."""

    def __init__(self, modules: dict[str, nn.Module], step: Callable[[Batch], dict]) -> None:
        super().__init__()
        self.parts = nn.ModuleDict(modules)
        self._step = step

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        return self._step(batch)


class _StopFlag:
    """SIGINT/SIGTERM set a flag checked between steps; a second Ctrl-C aborts at once."""

    def __init__(self) -> None:
        self.raised = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not in the main thread
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.raised and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.raised = True

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


@dataclass
class _Tally:
    """Loss sums, steps, images and seconds of the epoch so far (kept in a mid-epoch
    checkpoint, so a resumed epoch's record covers the whole epoch)."""

    sums: dict[str, float] = field(default_factory=dict)
    count: int = 0
    images: int = 0
    seconds: float = 0.0
    lr: float = 0.0

    @classmethod
    def restore(cls, snapshot: dict[str, Any] | None) -> _Tally:
        return cls(**snapshot) if snapshot else cls()

    def snapshot(self) -> dict[str, Any]:
        return {"sums": dict(self.sums), "count": self.count, "images": self.images,
                "seconds": self.seconds, "lr": self.lr}

    def add(self, step_losses: dict[str, torch.Tensor]) -> None:
        # One host synchronisation per step (the flags above already needed one).
        values = torch.stack(list(step_losses.values())).cpu().tolist()
        for key, value in zip(step_losses, values, strict=True):
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.count += 1

    def means(self) -> dict[str, float]:
        return {k: v / max(self.count, 1) for k, v in self.sums.items()}

    def record(self, stage: str, epoch: int, world: int) -> dict[str, Any]:
        return {"stage": stage, "epoch": epoch + 1, "steps": self.count, "lr": self.lr,
                "losses": self.means(),
                "images_per_second": self.images * world / self.seconds if self.seconds else 0.0,
                "seconds": self.seconds}


@dataclass
class Trainer:
    """Trains every stage of a method, resumably."""

    method: Method
    dataset: SBIRDataset
    context: Context
    paths: RunPaths | None
    output: Output
    options: TrainerOptions = field(default_factory=TrainerOptions)

    def __post_init__(self) -> None:
        self.stages = self.method.stages()
        for stage in self.stages:  # before any training: a later stage's batch may not fit
            self._steps_per_epoch(stage)
        self.modules = checkpoint.method_modules(self.method, self.stages)
        for module in self.modules.values():
            module.to(self.context.device)
        self.history: list[dict[str, Any]] = []
        self.reports: list[StageReport] = []
        self.reused: dict[str, str] = {}  # stage -> the run whose output it reused
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
            self._rewrite_history()
        for index, stage in enumerate(self.stages):
            if index < position.stage:
                self.reports.append(StageReport(stage.name))
                continue
            start = position if index == position.stage else Position(index)
            state = resume_from if resume_from and index == position.stage else None
            if state is None and start == Position(index) and self._reuse(stage):
                self.reports.append(StageReport(stage.name))
                self._save_stage_output(stage)
                continue
            self.reports.append(self._train_stage(index, stage, start, state))
            self._synchronise()
            self._save_stage_output(stage)
        return self.reports

    # ------------------------------------------------------------------ one stage
    def _steps_per_epoch(self, stage: Stage) -> int:
        """Optimiser steps per epoch: until the photo or the sketch stream runs out."""
        settings, world = stage.settings, self.context.world
        micro = settings.batch_size // settings.accum_steps
        modalities = ("photo", "sketch") if settings.skt_factor else ("photo",)
        counts = {m: len(self.dataset.items("train", m)) for m in modalities}
        steps = batches_per_epoch(counts["photo"], world, micro) // settings.accum_steps
        if "sketch" in counts:
            steps = min(steps, batches_per_epoch(counts["sketch"], world, micro)
                        * settings.skt_factor // settings.accum_steps)
        if steps == 0:
            listed = " and ".join(f"{n} training {m}s" for m, n in counts.items())
            raise UserError(f"stage {stage.name}: batch_size {settings.batch_size} is too "
                            f"large for {listed} on {world} process(es)")
        return steps

    def _train_stage(self, index: int, stage: Stage, start: Position,
                     state: dict[str, Any] | None) -> StageReport:
        settings = stage.settings
        ctx = self.context
        micro = settings.batch_size // settings.accum_steps
        factor = settings.skt_factor
        transform = train_transform(settings.augment, self.method.input_spec())
        streams = {}
        # Data order and augmentation are seeded by the stage's name, not its position, so
        # a stage sees the same batches whether or not earlier stages ran in this process.
        stage_id = zlib.crc32(stage.name.encode())
        for stream, modality in enumerate(("photo", "sketch")):
            if modality == "sketch" and factor == 0:
                continue
            items = ImageItems(self.dataset, self.dataset.items("train", modality), modality,
                               transform, seed=self.options.seed, stream=2 * stage_id + stream)
            sampler = EpochSampler(items, num_replicas=ctx.world, rank=ctx.rank,
                                   seed=mix_seed(self.options.seed, stage_id, stream))
            streams[modality] = (items, sampler, make_loader(
                items, sampler, micro, workers=self.options.workers,
                pin_memory=ctx.device.type == "cuda",
                seed=mix_seed(self.options.seed, stage_id, stream, ctx.rank)))
        steps = self._steps_per_epoch(stage)
        total = settings.epochs * steps
        global_batch = settings.batch_size * ctx.world
        peak_lr = settings.lr * global_batch / settings.lr_ref_batch
        warmup = round(settings.warmup_epochs * steps)
        wd_end = settings.weight_decay if settings.weight_decay_end is None \
            else settings.weight_decay_end

        for module in stage.frozen.values():
            module.eval()
            module.requires_grad_(False)
        wrapper = _StageModule(dict(stage.modules), stage.training_step).to(ctx.device)
        model: nn.Module = wrapper
        if ctx.distributed:
            model = DistributedDataParallel(
                wrapper, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
        params = [p for p in wrapper.parameters() if p.requires_grad]
        optimizer = make_adamw(param_groups(dict(stage.modules), stage.param_groups), ctx.device)
        scaler = torch.amp.GradScaler(ctx.device.type,
                                      enabled=self.options.precision == "fp16")
        if state is not None and state["position"]["epoch"] < settings.epochs:
            optimizer.load_state_dict(state["optimizer"])
            scaler.load_state_dict(state["scaler"])
            checkpoint.set_rng_state(state["rng"])
        report = StageReport(stage.name)
        progress = TrainingProgress(self.output, stage.name, settings.epochs, steps,
                                    start.epoch * steps + start.step)
        self.output.info(
            f"stage [bold]{stage.name}[/bold]: {settings.epochs} epochs x {steps} steps, "
            f"{settings.batch_size} photos/step/process ({settings.accum_steps} x {micro}), "
            f"sketches every {factor or '-'} micro-steps, peak lr {peak_lr:.2e}, "
            f"{ctx.world} process(es) on {ctx.device}")
        partial = state.get("partial") if state is not None else None
        try:
            with _StopFlag() as stop:
                for epoch in range(start.epoch, settings.epochs):
                    first = start.step if epoch == start.epoch else 0
                    tally = _Tally.restore(partial if epoch == start.epoch else None)
                    stopped = self._epoch(
                        index, stage, model, params, optimizer, scaler, streams, epoch, first,
                        steps, total, peak_lr, warmup, wd_end, stop, progress, tally)
                    if stopped is not None and stopped < steps:  # mid-epoch: save and stop
                        self._save(Position(index, epoch, stopped), optimizer, scaler,
                                   partial=tally.snapshot())
                        raise self._interrupted(stage, epoch, stopped)
                    record = tally.record(stage.name, epoch, ctx.world)
                    report.seconds += tally.seconds
                    report.images += tally.images * ctx.world
                    if self.options.after_epoch is not None and index == len(self.stages) - 1:
                        record["selection"] = self.options.after_epoch(epoch)
                    self.history.append(record)
                    progress.epoch(record)
                    self._append_history(record)
                    self._report_unreadable()
                    if not self._weights_finite(params):
                        raise TrainingStopped(
                            f"non-finite weights after stage {stage.name}, epoch {epoch + 1}; "
                            f"the last good checkpoint is {self._last_checkpoint()}")
                    self._save(Position(index, epoch + 1, 0), optimizer, scaler)
                    if stopped is not None:  # Ctrl-C on an epoch's last step
                        raise self._interrupted(stage, epoch + 1, 0)
        finally:
            progress.close()
        return report

    def _interrupted(self, stage: Stage, epoch: int, step: int) -> Interrupted:
        where = f" ({self.paths.last})" if self.paths else ""
        at = f"epoch {epoch + 1}, step {step + 1}" if step else f"the end of epoch {epoch}"
        return Interrupted(f"interrupted in stage {stage.name} at {at}; checkpoint saved{where}; "
                           "continue with --resume")

    def _last_checkpoint(self) -> str:
        return (str(self.paths.last) if self.paths and self.paths.last.exists()
                else "none (first epoch)")

    @staticmethod
    def _weights_finite(params: list[nn.Parameter]) -> bool:
        return all(bool(torch.isfinite(p).all()) for p in params)

    def _report_unreadable(self) -> None:
        if self.unreadable and len(self.unreadable) != self._reported_unreadable:
            self._reported_unreadable = len(self.unreadable)
            example = sorted(self.unreadable)[0]
            self.output.warn(f"{len(self.unreadable)} unreadable training images skipped so "
                             f"far (e.g. {example})")

    def _epoch(self, index: int, stage: Stage, model: nn.Module, params: list,
               optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
               streams: dict, epoch: int, first: int, steps: int, total: int, peak_lr: float,
               warmup: int, wd_end: float, stop: _StopFlag, progress: TrainingProgress,
               tally: _Tally) -> int | None:
        """Train steps ``first..steps`` of an epoch into ``tally``; returns None, or the
        number of steps done when Ctrl-C stopped it."""
        ctx, settings = self.context, stage.settings
        accum, factor = settings.accum_steps, settings.skt_factor
        # Each micro-loss is divided by the micro-losses a step has on average (as in the
        # TVT/PSKD code: accum photo parts and accum / skt_factor sketch parts).
        parts = accum + (accum / factor if factor else 0)
        micro_done = first * accum
        iterators: dict[str, Iterator[LoadedBatch]] = {}
        for modality, (_, sampler, loader) in streams.items():
            used = micro_done if modality == "photo" else (micro_done // factor if factor else 0)
            sampler.begin(epoch, used * loader.batch_size)
            iterators[modality] = iter(loader)
        model.train()
        for module in stage.frozen.values():
            module.eval()
        started = time.perf_counter()
        for step in range(first, steps):
            global_step = epoch * steps + step
            tally.lr = cosine(global_step, total, peak_lr, settings.min_lr, warmup)
            wd = cosine(global_step, total, settings.weight_decay, wd_end)
            set_step_values(optimizer, tally.lr, wd)
            micro_ids = range(step * accum, (step + 1) * accum)
            with_sketch = [bool(factor) and (m + 1) % factor == 0 for m in micro_ids]
            step_losses: dict[str, torch.Tensor] = {}
            for i, sketch_now in enumerate(with_sketch):
                photo = next(iterators["photo"])
                sketch = next(iterators["sketch"]) if sketch_now else None
                batch = Batch(photo.images.to(ctx.device, non_blocking=True),
                              photo.labels.to(ctx.device, non_blocking=True))
                self.unreadable.update(photo.unreadable)
                if sketch is not None:
                    batch.sketches = sketch.images.to(ctx.device, non_blocking=True)
                    batch.sketch_labels = sketch.labels.to(ctx.device, non_blocking=True)
                    self.unreadable.update(sketch.unreadable)
                tally.images += len(photo.labels) + (len(sketch.labels) if sketch else 0)
                last = i == accum - 1
                sync = contextlib.nullcontext() if last or not ctx.distributed else model.no_sync()
                with sync:
                    with autocast_context(ctx.device, self.options.precision):
                        losses = model(batch)
                    if "loss" not in losses:
                        raise UserError(f"stage {stage.name}: training_step returned no 'loss'")
                    scaler.scale(losses["loss"].float() / parts).backward()
                for key, value in losses.items():
                    step_losses[key] = step_losses.get(key, 0) + value.detach().float() / accum
            scaler.unscale_(optimizer)
            grads_finite = clip_gradients(params, settings.clip_grad, settings.clip_mode)
            flags = torch.stack([~torch.isfinite(step_losses["loss"]).to(ctx.device),
                                 ~grads_finite.to(ctx.device),
                                 torch.tensor(stop.raised, device=ctx.device)]).float()
            flags = all_reduce_sum(flags.to(ctx.device), ctx).cpu()
            if flags[0] > 0 or flags[1] > 0:
                optimizer.zero_grad(set_to_none=True)
                what = "loss" if flags[0] > 0 else "gradients (with a finite loss)"
                described = ", ".join(f"{k}={v.item():.4g}" for k, v in step_losses.items())
                raise TrainingStopped(f"non-finite {what} in stage {stage.name}, epoch "
                                      f"{epoch + 1}, step {step + 1}: {described}; the last good "
                                      f"checkpoint is {self._last_checkpoint()}")
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            tally.add(step_losses)
            tally.seconds += time.perf_counter() - started
            started = time.perf_counter()
            if flags[2] > 0:
                return step + 1
            if (step + 1) % self.options.log_every == 0 or step + 1 == steps:
                progress.step(epoch, step + 1, tally.means(), tally.lr,
                              tally.images * ctx.world / max(tally.seconds, 1e-9))
        return None

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
    def _save(self, position: Position, optimizer: torch.optim.Optimizer,
              scaler: torch.amp.GradScaler, partial: dict[str, Any] | None = None) -> None:
        if self.paths is None or not self.context.main:
            return
        checkpoint.save(self.paths.last, {
            "partial": partial,
            "position": {"stage": position.stage, "epoch": position.epoch,
                         "step": position.step},
            "modules": checkpoint.module_states(self.modules),
            "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
            "rng": checkpoint.rng_state(), "history": self.history,
        })

    def _stage_hash(self, stage: Stage) -> str | None:
        if stage.reuse_key is None:
            return None
        return config_hash({"stage": stage.name, "key": dict(stage.reuse_key),
                            **self.options.run_identity})

    def _reuse(self, stage: Stage) -> bool:
        """Load a matching saved output of this stage from an earlier run, if any."""
        digest = self._stage_hash(stage)
        root = self.options.reuse_root
        if digest is None or root is None:
            return False
        found = None
        if self.context.main:
            for sidecar in sorted(root.glob(f"*/*/*/stages/{stage.name}.json")):
                try:
                    if json.loads(sidecar.read_text()).get("hash") == digest:
                        found = str(sidecar.with_suffix(".pt"))
                        break
                except (OSError, ValueError):
                    continue
        from sbirbench.distributed import agree, broadcast_object

        found = broadcast_object(found, self.context)
        if found is None or not agree(Path(found).is_file(), self.context):
            return False
        saved = checkpoint.load(Path(found))
        checkpoint.load_module_states(dict(stage.modules), saved["modules"])
        self.reused[stage.name] = str(Path(found).parent.parent)
        self.output.info(f"stage [bold]{stage.name}[/bold]: reusing the output of "
                         f"{Path(found).parent.parent} (same stage configuration)")
        return True

    def _save_stage_output(self, stage: Stage) -> None:
        if self.paths is None or not self.context.main:
            return
        checkpoint.save(self.paths.stage(stage.name),
                        {"stage": stage.name,
                         "modules": checkpoint.module_states(dict(stage.modules))})
        digest = self._stage_hash(stage)
        if digest is not None:
            atomic.write_json(self.paths.stage(stage.name).with_suffix(".json"),
                              {"hash": digest, "stage": stage.name,
                               "key": dict(stage.reuse_key), **self.options.run_identity})

    def _append_history(self, record: dict[str, Any]) -> None:
        if self.paths is None or not self.context.main:
            return
        with open(self.paths.history, "a") as handle:
            handle.write(json.dumps(record) + "\n")

    def _rewrite_history(self) -> None:
        if self.paths is None or not self.context.main:
            return
        atomic.write_text(self.paths.history, "".join(json.dumps(r) + "\n" for r in self.history))
