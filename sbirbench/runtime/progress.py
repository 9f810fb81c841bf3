"""Training progress on rank 0: a rich progress bar (stage, epoch, step, loss parts,
learning rate, images/s, ETA), JSON lines, or nothing."""

from __future__ import annotations

from typing import Any

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from sbirbench.console import Output


def _fmt(values: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.4f}" for k, v in values.items())


class TrainingProgress:
    """Reports steps and epochs of one stage."""

    def __init__(
        self,
        output: Output,
        stage: str,
        epochs: int,
        steps_per_epoch: int,
        start: int = 0,
        log_every: int = 10,
    ) -> None:
        self.output = output
        self.log_every = log_every
        self.stage = stage
        self.epochs = epochs
        self.steps = steps_per_epoch
        self.bar: Progress | None = None
        if output.active and output.mode == "rich":
            self.bar = Progress(
                TextColumn("[bold]{task.fields[stage]}[/bold] epoch {task.fields[epoch]}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TextColumn("{task.fields[losses]}"),
                TextColumn("lr {task.fields[lr]}"),
                TextColumn("{task.fields[rate]} img/s"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=output.console,
                transient=False,
            )
            self.bar.start()
            epoch = f"{start // max(steps_per_epoch, 1) + 1}/{epochs}"
            self.task = self.bar.add_task(
                "train",
                total=epochs * steps_per_epoch,
                completed=start,
                stage=stage,
                epoch=epoch,
                losses="",
                lr="-",
                rate="-",
            )

    def step(
        self, epoch: int, step: int, losses: dict[str, float] | None, lr: float, rate: float | None
    ) -> None:
        done = epoch * self.steps + step
        if self.bar is not None:
            fields: dict[str, Any] = {"epoch": f"{epoch + 1}/{self.epochs}", "lr": f"{lr:.2e}"}
            if losses is not None:
                fields["losses"] = _fmt(losses)
            if rate is not None:
                fields["rate"] = f"{rate:.0f}"
            self.bar.update(self.task, completed=done, **fields)
        elif losses is not None:
            self.output.event(
                "step",
                stage=self.stage,
                epoch=epoch + 1,
                step=step,
                lr=lr,
                images_per_second=rate,
                **losses,
            )

    def epoch(self, record: dict[str, Any]) -> None:
        self.output.event("epoch", **record)
        line = (
            f"{record['stage']} epoch {record['epoch']}/{self.epochs}: "
            f"{_fmt(record['losses'])}  lr {record['lr']:.2e}  "
            f"{record['images_per_second']:.0f} img/s  {record['seconds']:.1f} s"
        )
        self.output.record(line)
        if self.bar is not None and self.output.mode == "rich":
            self.bar.console.print(f"  {line}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
