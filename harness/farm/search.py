"""A search's candidates verified on the farm: each fine-tuned and lowered here, one after the
other (the fine-tune is seeded and uses this host's torch), then all measured at once, their
images shared out over the boards (harness.farm.measure)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

from harness.boards import Board
from harness.farm.measure import FarmRun, measure_runs
from harness.farm.pool import BoardPool
from harness.measure.log import RunLog
from harness.search.haq import Scorer, prepare_candidate, verified_record, verify_log_path


def verify_on_farm(pool: BoardPool, candidates: list[dict], scorer: Scorer, board: Board,
                   out_dir: Path) -> Iterator[dict]:
    """The 'verified' records of `candidates`, in order, each naming the boards that measured it."""
    prepared = [prepare_candidate(candidate, scorer) for candidate in candidates]
    with ExitStack() as logs:
        runs = [FarmRun(policy, graph, board, inputs, labels,
                        logs.enter_context(RunLog(verify_log_path(out_dir, policy))))
                for policy, graph, inputs, labels in prepared]
        reports = measure_runs(pool, runs)
    for candidate, (_, graph, _, _), report in zip(candidates, prepared, reports):
        yield verified_record(candidate, scorer, graph, report)
