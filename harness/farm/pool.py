"""The farm's boards of one kind, one BoardWorker actor each, and the jobs they share.

`BoardPool.run(method, jobs)` gives every idle worker the next job and yields (job index,
result) as jobs finish. A worker whose board is lost (its answer says so, or its actor died)
is dropped and its job goes back to the front of the queue for another board of the kind;
when none is left the run fails with one line. A job that failed on its own fails the run.
"""
from __future__ import annotations

from collections import deque
from contextlib import contextmanager
from collections.abc import Iterator, Sequence
from typing import Callable

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from harness.errors import HarnessError
from harness.farm.cluster import board_resource, connected
from harness.farm.worker import BoardWorker

START_TIMEOUT_S = 60.0  # until every worker is placed and answers
STOP_TIMEOUT_S = 10.0


class BoardPool:
    """One BoardWorker per `board:<board_name>` unit of the cluster; a context manager."""

    def __init__(self, board_name: str, on_lost: Callable[[str], None] = lambda reason: None) -> None:
        self.board_name = board_name
        self.on_lost = on_lost
        resource = board_resource(board_name)
        count = int(ray.cluster_resources().get(resource, 0))
        if count == 0:
            raise HarnessError(f"the farm has no {board_name} board (no {resource} resource; "
                               f"boards there: {', '.join(farm_boards()) or 'none'})")
        actor = ray.remote(BoardWorker).options(resources={resource: 1}, num_cpus=0, max_restarts=0)
        workers = [actor.remote(board_name, number) for number in range(count)]
        try:
            described = ray.get([worker.describe.remote() for worker in workers], timeout=START_TIMEOUT_S)
        except GetTimeoutError:
            raise HarnessError(f"the farm's {count} {board_name} boards did not all start within "
                               f"{START_TIMEOUT_S:g} s") from None
        self.names: dict[object, str] = {}
        self._running: dict = {}
        for worker, description in zip(workers, described):
            if description["problem"] is None:
                self.names[worker] = description["name"]
            else:
                on_lost(f"{description['name']}: {description['problem']}")
                ray.kill(worker)
        self.pids = {self.names[worker]: description["pid"]
                     for worker, description in zip(workers, described) if worker in self.names}
        if not self.names:
            raise HarnessError(f"no {board_name} board of the farm can run: see the messages above")

    def __len__(self) -> int:
        return len(self.names)

    def run(self, method: str, jobs: Sequence) -> Iterator[tuple[int, object]]:
        """(index, result) of every job, as they finish."""
        queue = deque(range(len(jobs)))
        idle = list(self.names)
        running = self._running = {}  # ObjectRef -> (worker, job index)
        last_loss = ""
        while queue or running:
            while queue and idle:
                worker, index = idle.pop(0), queue.popleft()
                running[getattr(worker, method).remote(jobs[index])] = (worker, index)
            if not running:
                raise HarnessError(f"no {self.board_name} board of the farm is left for {len(queue)} of "
                                   f"{len(jobs)} jobs (last lost: {last_loss})")
            [ref], _ = ray.wait(list(running), num_returns=1)
            worker, index = running.pop(ref)
            try:
                status, value = ray.get(ref)
            except RayActorError as error:
                status, value = "lost", f"{self.names[worker]}: its worker died ({type(error).__name__})"
            if status == "ok":
                idle.append(worker)
                yield index, value
            elif status == "lost":
                last_loss = str(value)
                self._drop(worker, last_loss)
                queue.appendleft(index)
            else:
                raise HarnessError(str(value))

    def _drop(self, worker, reason: str) -> None:
        self.on_lost(f"{reason}; its job goes to another {self.board_name} board")
        del self.names[worker]
        ray.kill(worker)

    def close(self) -> None:
        """Stop the boards (at once when jobs are still running: a worker's emulator dies with it)."""
        for worker in list(self.names):
            if not self._running:
                try:
                    ray.get(worker.close.remote(), timeout=STOP_TIMEOUT_S)
                except (RayActorError, GetTimeoutError):
                    pass  # lost meanwhile: its board went with its process
            ray.kill(worker)
        self.names.clear()

    def __enter__(self) -> BoardPool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def farm_boards() -> list[str]:
    """'name: count' of every board kind the cluster advertises."""
    return [f"{name.removeprefix('board:')}: {count:g}" for name, count in sorted(ray.cluster_resources().items())
            if name.startswith("board:")]


@contextmanager
def open_pool(address: str | None, board_name: str, local_boards: int, say: Callable[[str], None]) -> Iterator[BoardPool]:
    """The farm's pool of `board_name` boards: at `address`, or on a farm of `local_boards`
    started in this process; `say` gets one line per worker lost."""
    with connected(address, {board_name: local_boards}):
        with BoardPool(board_name, on_lost=lambda reason: say(f"farm: {reason}")) as pool:
            say(f"farm: {len(pool)} {board_name} board(s): {', '.join(sorted(pool.names.values()))}")
            yield pool
