"""The per-image JSONL log of `harness measure`: locked, fsynced, resumable.

One record per line, each with an `event`:

- `start`: run_id, policy (path), policy_hash, model_hash, firmware (digest), board, images,
  random_weights, first (the image index it starts at: 0, or where a resume continues)
- `image`: run_id, index, label, device_class, host_class, bit_exact, ticks, layer_ticks,
  output_hash (sha256 of the output tensor's bytes, 16 hex digits), remeasured (runs repeated
  because the link disturbed their timing)
- `error`: run_id, message, next (the index that was being measured)
- `end`: run_id, images, bit_exact, remeasured

The log is locked (flock) while a run writes it, so two runs cannot share one log.
"""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from harness.errors import HarnessError


class RunLog:
    """An open, exclusively locked JSONL log; records are appended, flushed and fsynced."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise HarnessError(f"log {self.path}: is a directory")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
        except OSError as error:
            raise HarnessError(f"log {self.path}: cannot write: {error.strerror}") from None
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.close()
            raise HarnessError(f"log {self.path}: another run is writing it; give this run its own --out or --log") \
                from None

    def append(self, record: dict) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()  # releases the lock

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def read_records(path: Path) -> list[dict]:
    """Every complete record of a log (a torn last line, from a crash mid-write, is ignored)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HarnessError(f"--resume {path}: no such log") from None
    except (OSError, UnicodeDecodeError) as error:
        raise HarnessError(f"--resume {path}: cannot read: {error}") from None
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(text.splitlines()):
                break
            raise HarnessError(f"--resume {path}: line {number} is not JSON") from None
        if not isinstance(record, dict) or "event" not in record:
            raise HarnessError(f"--resume {path}: line {number} is not a log record")
        records.append(record)
    return records


def resume_point(path: Path) -> tuple[dict, list[dict]]:
    """The last run's `start` record and its image records so far (in index order, 0 .. k-1);
    HarnessError when the log holds no run or that run already ended."""
    records = read_records(path)
    starts = [record for record in records if record["event"] == "start"]
    if not starts:
        raise HarnessError(f"--resume {path}: the log holds no run (no start record)")
    start = next(record for record in starts if record["run_id"] == starts[-1]["run_id"])  # the first start
    run_id = start["run_id"]
    if any(record["event"] == "end" and record.get("run_id") == run_id for record in records):
        raise HarnessError(f"--resume {path}: run {run_id} already completed; nothing to resume")
    images: dict[int, dict] = {}
    for record in records:
        if record["event"] == "image" and record.get("run_id") == run_id:
            images.setdefault(int(record["index"]), record)
    done = sorted(images)
    if done != list(range(len(done))):
        raise HarnessError(f"--resume {path}: run {run_id} has gaps in its image indices")
    return start, [images[index] for index in done]
