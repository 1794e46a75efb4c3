"""`harness profile --farm`: the profiling images (harness.measure.profile) built here and run on
the farm's boards at once; the models are split into at least one image per board."""
from __future__ import annotations

import math
from typing import Callable

from harness.boards import Board
from harness.build.codegen import model_hash
from harness.build.firmware import build_graphs
from harness.farm.pool import BoardPool
from harness.farm.worker import Firmware, ProfileJob
from harness.ir.graph import Graph
from harness.measure.latency import LatencyTable
from harness.measure.profile import add_to_table, batches, profile_graphs


def farm_profile(pool: BoardPool, graph: Graph, board: Board,
                 on_measured: Callable[[int, int], None] = lambda done, total: None,
                 runs: bool = False) -> tuple[LatencyTable, int]:
    """harness.measure.profile.profile on the pool's boards; (table, configurations measured)."""
    table = LatencyTable.for_board(board)
    todo = profile_graphs(graph, table, runs=runs)
    on_measured(0, len(todo))
    groups = batches(todo, board.budget.flash, max_models=max(1, math.ceil(len(todo) / len(pool))))
    jobs = [ProfileJob(Firmware.of(build_graphs(group, board, "profile"), model_hash(group)), group)
            for group in groups]
    done = 0
    for index, measured in pool.run("profile", jobs):
        add_to_table(table, measured)
        done += len(groups[index])
        on_measured(done, len(todo))
    return table, len(todo)
