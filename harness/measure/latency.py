"""The measured latency table: ticks of one layer at one bit configuration, on one board and firmware.

`harness profile` fills it (harness.measure.profile); the HAQ search reads it to predict a whole
network's latency without building it:

    predicted ticks = sum over layers of table[layer geometry, bits] + per-network overhead

(a channel-wise layer costs the sum over its runs of equal bits, each looked up as the layer
with the run's output channels and bits (run_keys), or, where that run was not measured,
a + b * channels through the layer profiled at all its output channels and at half of them,
at the run's bits: `harness profile --runs`)

The per-network overhead is measured too: a RUN's total ticks minus its layers' ticks (the
model's run() call, the calls around each layer, the timer reads), median over every profiled
single-layer model. The table is a JSON file under cache_dir("latency"), one per (board,
firmware digest); the digest hashes every firmware source, the board file and the compiler
(harness.build.firmware.build_key without generated sources), so a changed kernel gets a new, empty table
and nothing stale is reused. Values are ticks of the board's counter; `per_tick` converts them
to the board's unit (cycles on hardware, instructions in emulators).
"""
from __future__ import annotations

import fcntl
import json
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from harness.boards import Board
from harness.build.firmware import build_key
from harness.errors import HarnessError
from harness.files import write_atomic
from harness.ir.graph import Graph, Layer, Tensor, weight_runs
from harness.paths import cache_dir
from harness.ir.planner import kernel_for

TABLE_FORMAT = 2  # 2: profiled layers requantize like a ReLU network (harness.measure.profile)


def layer_key(graph: Graph, layer: Layer, bits: tuple[int, int | None, int] | None = None,
              in2_bits: int | None = None) -> str:
    """What decides a layer's latency: kernel, geometry, bits (the graph's, or `bits` as
    (input, weight, output) and `in2_bits` for an add's second input), and whether its input
    has a zero-point."""
    inp, out = graph.tensors[layer.input], graph.tensors[layer.output]
    in_bits, w_bits, out_bits = bits or (inp.bits, layer.w_bits, out.bits)
    shape = lambda t: "x".join(map(str, t.shape))  # noqa: E731
    second = ""
    if layer.input2 is not None:
        second = f" i2:{in2_bits or graph.tensors[layer.input2].bits}"
    return (f"{kernel_for(layer)}|in {shape(inp)}|out {shape(out)}|k {layer.kernel[0]}x{layer.kernel[1]}"
            f"|s {layer.stride[0]}x{layer.stride[1]}|p {','.join(map(str, layer.padding))}"
            f"|zp {int(inp.zero_point != 0)}|bits i{in_bits}{second} w{w_bits or 0} o{out_bits}")


def window_key(graph: Graph, layer: Layer, channels: int, w_bits: int) -> str:
    """The key of the layer's kernel called on `channels` output channels at `w_bits`."""
    out = graph.tensors[layer.output]
    window = Tensor(out.name, (*out.shape[:2], channels), out.bits, out.scale)
    view = Graph(graph.name, {layer.input: graph.tensors[layer.input], layer.output: window}, [layer],
                 layer.input, layer.output)
    return layer_key(view, layer, (graph.tensors[layer.input].bits, w_bits, out.bits))


def half_channels(graph: Graph, layer: Layer) -> int:
    """The second channel count a channel-wise layer is profiled at (a + b * channels): half."""
    return graph.tensors[layer.output].channels // 2


def run_keys(graph: Graph, layer: Layer) -> list[str]:
    """The table keys a layer costs: its own, or for a channel-wise layer one per run of equal
    bits (the kernel called on that output-channel window: the run's channel count and bits)."""
    if not isinstance(layer.w_bits, list):
        return [layer_key(graph, layer)]
    return [window_key(graph, layer, run.count, run.bits) for run in weight_runs(layer, graph.tensors[layer.output].channels)]


def firmware_digest(board: Board) -> str:
    """Hash of what the firmware around a model is built from (sources, board file, compiler)."""
    with tempfile.TemporaryDirectory() as empty:
        return build_key(board, Path(empty))[:16]


@dataclass
class LatencyTable:
    """Ticks per layer configuration for one board and firmware; `overheads` are the measured
    per-network overheads (total minus layer ticks) of the profiled models."""

    board: str
    firmware: str
    unit: str = "ticks"
    per_tick: float = 1.0
    entries: dict[str, int] = None
    overheads: list[int] = None
    saved_overheads: int = field(default=0, init=False, repr=False)  # how many the file already holds

    def __post_init__(self) -> None:
        self.entries = dict(self.entries or {})
        self.overheads = list(self.overheads or [])

    @property
    def path(self) -> Path:
        return cache_dir("latency") / f"{self.board}-{self.firmware}.json"

    @classmethod
    def for_board(cls, board: Board) -> "LatencyTable":
        """The cached table of this board and firmware (empty if never profiled)."""
        table = cls(board.name, firmware_digest(board))
        saved = table.saved()
        if saved:
            table.unit, table.per_tick = saved["unit"], saved["per_tick"]
            table.merge(saved)
        return table

    def saved(self) -> dict:
        """The table file's document ({} when there is none, or of another format)."""
        document = json.loads(self.path.read_text()) if self.path.is_file() else {}
        return document if document.get("format") == TABLE_FORMAT else {}

    def merge(self, saved: dict) -> None:
        """Add a saved document's entries and overheads (another process may have profiled since)."""
        if saved:
            self.entries = saved["entries"] | self.entries
            self.overheads = saved["overheads"] + self.overheads[self.saved_overheads:]
        self.saved_overheads = len(self.overheads)

    def save(self) -> None:
        """Merge with the file under a lock, then write atomically (a temporary file renamed over it):
        processes profiling the same board at once keep each other's entries."""
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.merge(self.saved())
            document = {"format": TABLE_FORMAT, "board": self.board, "firmware": self.firmware, "unit": self.unit,
                        "per_tick": self.per_tick, "entries": self.entries, "overheads": self.overheads}
            write_atomic(self.path, json.dumps(document, indent=0, sort_keys=True))

    def run_ticks(self, graph: Graph, layer: Layer) -> list[int | None]:
        """Ticks of each run of `layer` (one for a layer-wise layer): the measured entry, or for a
        run of a channel-wise layer, a + b * channels through the layer's two profiled widths at
        the run's bits (all its output channels and half_channels); None where neither is there."""
        if not isinstance(layer.w_bits, list):
            return [self.entries.get(layer_key(graph, layer))]
        channels, half = graph.tensors[layer.output].channels, half_channels(graph, layer)
        ticks = []
        for run in weight_runs(layer, channels):
            measured = self.entries.get(window_key(graph, layer, run.count, run.bits))
            full, narrow = (self.entries.get(window_key(graph, layer, c, run.bits)) for c in (channels, half))
            if measured is None and full is not None and narrow is not None and half > 0:
                measured = round(narrow + (full - narrow) * (run.count - half) / (channels - half))
            ticks.append(measured)
        return ticks

    def missing(self, graph: Graph) -> list[str]:
        return [key for layer in graph.layers
                for key, ticks in zip(run_keys(graph, layer), self.run_ticks(graph, layer)) if ticks is None]

    @property
    def overhead(self) -> float:
        """Per-network overhead in ticks (median of the measured ones)."""
        if not self.overheads:
            raise HarnessError(f"latency table {self.path} has no measured overhead: run `harness profile`")
        return float(statistics.median(self.overheads))

    def layer_ticks(self, graph: Graph) -> list[int]:
        """Measured ticks of every layer of `graph`; HarnessError naming what was never profiled."""
        missing = self.missing(graph)
        if missing:
            raise HarnessError(f"latency table for {self.board} lacks {len(missing)} layer configurations "
                               f"(first: {missing[0]}); run `harness profile --board {self.board}` on this model")
        return [sum(self.run_ticks(graph, layer)) for layer in graph.layers]

    def layer_entry(self, graph: Graph, layer: Layer, w_bits: int | None = None) -> int | None:
        """Measured ticks of `layer` as in `graph` (or with `w_bits` weights); None: never profiled."""
        inp, out = graph.tensors[layer.input].bits, graph.tensors[layer.output].bits
        bits = None if w_bits is None else (inp, w_bits, out)
        return self.entries.get(layer_key(graph, layer, bits))

    def predict(self, graph: Graph) -> float:
        """Predicted whole-network latency in the table's unit (layers + overhead)."""
        return (sum(self.layer_ticks(graph)) + self.overhead) * self.per_tick
