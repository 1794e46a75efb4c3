"""How a training loop shows its progress: a rich bar with the ETA on a terminal, one plain line
per epoch (with elapsed time and ETA) otherwise, so CI logs stay readable.

Kept apart from harness.frontend.train so that how progress looks is no part of the training
code the shipped checkpoints are keyed to (harness.frontend.shipped).
"""
from __future__ import annotations

import sys
import time
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from harness.units import format_duration

Log = Callable[[str], None]


class TrainingProgress:
    """Mini-batch steps of `epochs` epochs. Silent without a log; a live bar when stderr is a
    terminal; else the log gets one line per epoch."""

    def __init__(self, label: str, epochs: int, steps_per_epoch: int, log: Log | None,
                 terminal: bool | None = None):
        self.label, self.epochs, self.log = label, epochs, log
        self.total = epochs * steps_per_epoch
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.started = time.monotonic()
        self.bar: Progress | None = None

    def __enter__(self) -> TrainingProgress:
        self.started = time.monotonic()
        if self.log and self.terminal:
            self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[note]}"), TimeElapsedColumn(), TextColumn("ETA"),
                                TimeRemainingColumn(), console=Console(stderr=True), transient=False)
            self.bar.__enter__()
            self.task = self.bar.add_task(self.label, total=self.total, note=f"epoch 1/{self.epochs}")
        return self

    def step(self) -> None:
        """One mini-batch done."""
        if self.bar:
            self.bar.advance(self.task)

    def epoch(self, done: int, loss: float) -> None:
        """Epoch `done` (1-based) finished with mean loss `loss`."""
        if self.bar:
            self.bar.update(self.task, note=f"epoch {done}/{self.epochs} loss {loss:.4f}")
        elif self.log:
            elapsed = time.monotonic() - self.started
            eta = elapsed / done * (self.epochs - done)
            self.log(f"{self.label}: epoch {done}/{self.epochs}: loss {loss:.4f} "
                     f"({format_duration(elapsed)}, ETA {format_duration(eta)})")

    def __exit__(self, *exc) -> None:
        if self.bar:
            self.bar.__exit__(*exc)
            self.bar = None
