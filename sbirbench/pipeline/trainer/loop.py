"""One stage's training loop: the modules it trains, the optimiser, the schedule and the
data streams, and one epoch of optimiser steps.

A step of ``batch_size`` photos is ``accum_steps`` micro-batches; a sketch micro-batch of
the same size joins every ``skt_factor``-th one, and each micro-loss is divided by the
number of micro-losses a step has on average (as in the TVT/PSKD code: ``accum`` photo
parts and ``accum / skt_factor`` sketch parts). Gradients are accumulated with
``no_sync`` on all but the last micro-step under DDP.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from sbirbench.errors import UserError
from sbirbench.interfaces import Batch, Modality, SBIRDataset, Stage
from sbirbench.modes import freeze_batchnorm
from sbirbench.runtime.devices import autocast_context
from sbirbench.runtime.distributed import Context, all_reduce_sum
from sbirbench.runtime.optim import clip_gradients, make_adamw, param_groups, set_step_values
from sbirbench.runtime.progress import TrainingProgress
from sbirbench.schedule import cosine

from .records import Tally
from .signals import StopFlag, TrainingStopped
from .streams import Stream, make_streams, steps_per_epoch


class _StageModule(nn.Module):
    """The trained modules of a stage as one module whose forward is the training step,
    so DDP sees every forward call."""

    def __init__(self, modules: dict[str, nn.Module], step: Callable[[Batch], dict]) -> None:
        super().__init__()
        self.parts = nn.ModuleDict(modules)
        self._step = step

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        return self._step(batch)


class StageLoop:
    """Everything one stage's epochs need, built once per stage."""

    def __init__(
        self,
        stage: Stage,
        dataset: SBIRDataset,
        context: Context,
        transform: Callable,
        *,
        seed: int,
        workers: int,
        precision: str,
    ) -> None:
        self.stage, self.context, self.precision = stage, context, precision
        settings = stage.settings
        self.streams: dict[Modality, Stream] = make_streams(
            stage.name,
            settings,
            dataset,
            transform,
            context,
            seed,
            workers,
            stage.pair_photos,
            stage.pair_sketches,
        )
        self.steps = steps_per_epoch(stage, dataset, context.world)
        self.total = settings.epochs * self.steps
        self.peak_lr = settings.lr * settings.batch_size * context.world / settings.lr_ref_batch
        self.warmup = round(settings.warmup_epochs * self.steps)
        self.wd_end = (
            settings.weight_decay
            if settings.weight_decay_end is None
            else settings.weight_decay_end
        )
        for module in stage.frozen.values():
            module.eval()
            module.requires_grad_(False)
        wrapper = _StageModule(dict(stage.modules), stage.training_step).to(context.device)
        self.model: nn.Module = wrapper
        self.ddp: DistributedDataParallel | None = None
        if context.distributed:
            self.model = self.ddp = DistributedDataParallel(
                wrapper,
                device_ids=[context.device.index] if context.device.type == "cuda" else None,
            )
        self.params = [p for p in wrapper.parameters() if p.requires_grad]
        self.optimizer = make_adamw(
            param_groups(dict(stage.modules), stage.param_groups), context.device
        )
        self.scaler = torch.amp.GradScaler(context.device.type, enabled=precision == "fp16")

    def describe(self) -> str:
        s = self.stage.settings
        micro = s.batch_size // s.accum_steps
        return (
            f"stage [bold]{self.stage.name}[/bold]: {s.epochs} epochs x {self.steps} steps, "
            f"{s.batch_size} photos/step/process ({s.accum_steps} x {micro}), sketches "
            f"every {s.skt_factor or '-'} micro-steps, peak lr {self.peak_lr:.2e}, "
            f"{self.context.world} process(es) on {self.context.device}"
        )

    def state(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])

    def weights_finite(self) -> bool:
        return all(bool(torch.isfinite(p).all()) for p in self.params)

    def epoch(
        self,
        epoch: int,
        first: int,
        tally: Tally,
        stop: StopFlag,
        progress: TrainingProgress,
        last_good: str,
        unreadable: set[str],
    ) -> int | None:
        """Train steps ``first..steps`` of ``epoch`` into ``tally``; returns None, or the
        number of steps done when Ctrl-C stopped it. ``last_good`` names the checkpoint a
        non-finite step falls back to; unreadable images found are added to
        ``unreadable``."""
        settings, ctx = self.stage.settings, self.context
        accum, factor = settings.accum_steps, settings.skt_factor
        parts = accum + (accum / factor if factor else 0)
        micro_done = first * accum
        iterators = {
            modality: stream.start(
                epoch,
                micro_done if modality == "photo" else (micro_done // factor if factor else 0),
            )
            for modality, stream in self.streams.items()
        }
        self.model.train()
        if settings.batchnorm in ("frozen", "auto"):  # "auto" is resolved with the run
            freeze_batchnorm(self.model)
        for module in self.stage.frozen.values():
            module.eval()
        started = time.perf_counter()
        for step in range(first, self.steps):
            global_step = epoch * self.steps + step
            tally.lr = cosine(global_step, self.total, self.peak_lr, settings.min_lr, self.warmup)
            set_step_values(
                self.optimizer,
                tally.lr,
                cosine(global_step, self.total, settings.weight_decay, self.wd_end),
            )
            step_losses: dict[str, torch.Tensor] = {}
            for i in range(accum):
                micro_id = step * accum + i
                photo = next(iterators["photo"])
                sketch = (
                    next(iterators["sketch"]) if factor and (micro_id + 1) % factor == 0 else None
                )
                batch = Batch(
                    photo.images.to(ctx.device, non_blocking=True),
                    photo.labels.to(ctx.device, non_blocking=True),
                    epoch=epoch + step / self.steps,
                )
                unreadable.update(photo.unreadable)
                if sketch is not None:
                    batch.sketches = sketch.images.to(ctx.device, non_blocking=True)
                    batch.sketch_labels = sketch.labels.to(ctx.device, non_blocking=True)
                    unreadable.update(sketch.unreadable)
                tally.images += len(photo.labels) + (len(sketch.labels) if sketch else 0)
                sync = (
                    self.ddp.no_sync()
                    if self.ddp is not None and i < accum - 1
                    else contextlib.nullcontext()
                )
                with sync:
                    with autocast_context(ctx.device, self.precision):
                        losses = self.model(batch)
                    if "loss" not in losses:
                        raise UserError(
                            f"stage {self.stage.name}: training_step returned no 'loss'"
                        )
                    self.scaler.scale(losses["loss"].float() / parts).backward()
                for key, value in losses.items():
                    step_losses[key] = step_losses.get(key, 0) + value.detach().float() / accum
            stopped = self._finish_step(step_losses, stop, epoch, step, last_good)
            tally.add(step_losses)
            tally.seconds += time.perf_counter() - started
            started = time.perf_counter()
            if stopped:
                return step + 1
            if (step + 1) % progress.log_every == 0 or step + 1 == self.steps:
                progress.step(
                    epoch,
                    step + 1,
                    tally.means(),
                    tally.lr,
                    tally.images * ctx.world / max(tally.seconds, 1e-9),
                )
        return None

    def _finish_step(
        self,
        step_losses: dict[str, torch.Tensor],
        stop: StopFlag,
        epoch: int,
        step: int,
        last_good: str,
    ) -> bool:
        """Clip, check every rank's loss and gradients, and step; whether Ctrl-C asks to
        stop after this step."""
        ctx = self.context
        self.scaler.unscale_(self.optimizer)
        settings = self.stage.settings
        grads_finite = clip_gradients(self.params, settings.clip_grad, settings.clip_mode)
        flags = torch.stack(
            [
                ~torch.isfinite(step_losses["loss"]).to(ctx.device),
                ~grads_finite.to(ctx.device),
                torch.tensor(stop.raised, device=ctx.device),
            ]
        ).float()
        flags = all_reduce_sum(flags.to(ctx.device), ctx).cpu()
        if flags[0] > 0 or flags[1] > 0:
            self.optimizer.zero_grad(set_to_none=True)
            what = "loss" if flags[0] > 0 else "gradients (with a finite loss)"
            described = ", ".join(f"{k}={v.item():.4g}" for k, v in step_losses.items())
            raise TrainingStopped(
                f"non-finite {what} in stage {self.stage.name}, epoch "
                f"{epoch + 1}, step {step + 1}: {described}; the last good "
                f"checkpoint is {last_good}"
            )
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return bool(flags[2] > 0)
