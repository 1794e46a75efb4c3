"""`harness measure --farm`: a run's images split over the farm's boards, logged as one run.

The images go out in chunks of CHUNK_IMAGES (an idle board takes the next); the per-image log
(harness.measure.log) gets each chunk's records in index order as soon as the chunks before it
are in, under one run id, so it reads as a single board's log and `--resume` continues it. A
lost board's chunk is measured again, whole, on another: no image is logged twice or missed.
Every board runs the same ELF, built here; each starts its session with a warm-up RUN of its
first image, as a resumed run does (harness.measure.run.start_session). Several runs (a
search's candidates) share the boards: their chunks go into one queue.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from harness.boards import Board
from harness.errors import HarnessError
from harness.farm.pool import BoardPool
from harness.farm.worker import Firmware, Measured, MeasureJob
from harness.ir.graph import Graph
from harness.measure.log import RunLog
from harness.measure.run import (ImageResult, build_policy_firmware, finish, image_record, log_error, prior_results,
                                 start_record, summarize)
from harness.policy import Policy

CHUNK_IMAGES = 20


@dataclass
class FarmRun:
    """One run's arguments, as harness.measure.run.measure takes them, and its progress."""

    policy: Policy
    graph: Graph
    board: Board
    inputs: np.ndarray
    labels: np.ndarray
    log: RunLog
    on_image: Callable[[ImageResult], None] = lambda result: None
    policy_path: str = ""
    resume: tuple[dict, list[dict]] | None = None
    link_faults: str | None = None
    finished: dict[int, Measured] = field(default_factory=dict)
    logged_chunks: int = 0

    def start(self, workers: list[str]) -> list[MeasureJob]:
        """Build, log the start record and return the run's chunks of images still to measure."""
        self.build = build_policy_firmware(self.graph, self.policy, self.board)
        self.results, self.run_id = prior_results(self.resume, self.policy, self.graph, self.build, len(self.inputs))
        firmware = Firmware.of(self.build, self.graph.hash())
        chunks = [list(range(first, min(first + CHUNK_IMAGES, len(self.inputs))))
                  for first in range(len(self.results), len(self.inputs), CHUNK_IMAGES)]
        if not chunks:
            raise HarnessError("every image of the run is measured already")
        self.log.append({**start_record(self.run_id, self.policy_path, self.policy, self.graph, self.build,
                                        self.board, len(self.inputs), len(self.results)), "farm": workers})
        return [MeasureJob(firmware, self.graph, chunk, self.inputs[chunk], self.labels[chunk], self.link_faults)
                for chunk in chunks]

    def add(self, chunk: int, measured: Measured) -> None:
        """A chunk's images; logged with every chunk before it that is in now."""
        self.finished[chunk] = measured
        while self.logged_chunks in self.finished:
            for result in self.finished[self.logged_chunks].results:
                self.log.append(image_record(self.run_id, result))
                self.results.append(result)
                self.on_image(result)
            self.logged_chunks += 1

    def report(self) -> dict:
        measured = list(self.finished.values())
        report = summarize(self.policy, self.graph, self.board, self.build, measured[0].info, self.results)
        per_worker = Counter()
        for answer in measured:
            per_worker[answer.worker] += len(answer.results)
        report["farm"] = dict(sorted(per_worker.items()))
        link = sum((Counter(answer.link) for answer in measured), Counter())
        return finish(self.log, self.run_id, report, self.results, dict(link))


def measure_runs(pool: BoardPool, runs: list[FarmRun]) -> list[dict]:
    """Every run measured on the pool's boards; their reports (with "farm": images per worker)."""
    workers = sorted(pool.names.values())
    jobs, owners = [], []
    for run in runs:
        chunks = run.start(workers)
        jobs += chunks
        owners += [(run, number) for number in range(len(chunks))]
    try:
        for index, measured in pool.run("measure", jobs):
            run, chunk = owners[index]
            run.add(chunk, measured)
    except (HarnessError, KeyboardInterrupt) as error:
        for run in runs:
            log_error(run.log, run.run_id, len(run.results), error)
        raise
    return [run.report() for run in runs]


def farm_measure(pool: BoardPool, policy: Policy, graph: Graph, board: Board, inputs: np.ndarray, labels: np.ndarray,
                 log: RunLog, on_image: Callable[[ImageResult], None] = lambda result: None, *,
                 policy_path: str = "", resume: tuple[dict, list[dict]] | None = None,
                 link_faults: str | None = None) -> dict:
    """harness.measure.run.measure on the pool's boards: the same log records and report."""
    [report] = measure_runs(pool, [FarmRun(policy, graph, board, inputs, labels, log, on_image, policy_path,
                                           resume, link_faults)])
    return report
