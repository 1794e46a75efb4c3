"""Integer graph(s) -> generated C -> built ELF for a board (both steps cached by content)."""
from __future__ import annotations

from harness.boards import Board
from harness.build import BuildResult, build_firmware
from harness.codegen import generate, model_hash
from harness.ir import Graph
from harness.paths import cache_dir


def build_graphs(graphs: list[Graph], board: Board, policy_hash: str = "") -> BuildResult:
    """Generate model.c for `graphs` and build the board's firmware around it."""
    gen_dir = cache_dir("generated", f"{model_hash(graphs)}-{policy_hash or 'none'}")
    generate(graphs, gen_dir, policy_hash)
    return build_firmware(board, gen_dir)
