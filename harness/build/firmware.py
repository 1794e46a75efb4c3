"""Build the firmware for a board and a generated model (or integer graphs, generating their C
first), cached by content; measure its memory.

The build is `make -C firmware BOARD=<board> GEN=<generated sources> OUT=<dir>` (plus any
make variables the caller adds). Its output goes under the cache
(harness.paths.cache_dir("builds", key)/firmware.elf), where the key hashes everything that
decides the ELF: every file under firmware/, the generated sources, the board file, the
compiler version and the extra make variables. make runs without the environment variables the
Makefile would read (OPT, EXTRA_CFLAGS, ...), so nothing unhashed reaches the build. A cache
hit does not run make.

Memory is read from the ELF (pyelftools) against the board's regions:
- flash: every allocated section with contents whose load address lies in a flash region
  (vectors, code, constants and weights, .ARM.exidx, the .data load image);
- RAM: every allocated section whose run address lies in a budgeted RAM region (.data, .bss
  with the activation arena). A `reserved` region (the stack, in the H743's DTCM) is memory of
  its own outside the RAM budget: it is reported as `reserved_bytes`, not added to `ram_bytes`.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from rich.console import Console

from harness import cache as harness_cache
from harness.backends import ToolStatus
from harness.boards import Board
from harness.build.codegen import generate, model_hash
from harness.build.mlperf_config import MlperfConfig, write_config
from harness.errors import HarnessError
from harness.ir.graph import Graph
from harness.paths import FIRMWARE_DIR, cache_dir
from harness.processes import run_logged
from harness.units import format_size

GCC = "arm-none-eabi-gcc"
TOOLCHAIN_INSTALL = "install it with: sudo apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi make"
BUILD_TIMEOUT_S = 600.0
ELF_NAME = "firmware.elf"
# bump when the make interface or the cache layout changes, so old entries are not reused
_CACHE_FORMAT = "make -C firmware BOARD GEN OUT / 1"
# build outputs someone may leave inside firmware/ by running make by hand: not sources
_NOT_SOURCES = {".o", ".d", ".elf", ".map", ".bin", ".hex", ".lst", ".pyc"}
_SKIPPED_DIRS = {"build", "out", "__pycache__"}
# environment variables firmware/Makefile (or make itself) would pick up; pass them as make_vars
_MAKE_ENV_KNOBS = {"OPT", "PROTOCOL", "UART_BAUD", "EXTRA_CFLAGS", "EXTRA_SRC", "CROSS", "V", "CFLAGS", "LDFLAGS",
                   "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEFILES", "GNUMAKEFLAGS"}
_console = Console(stderr=True)


@dataclass(frozen=True)
class Section:
    """One allocated ELF section and what it costs: `flash` and `ram` bytes (a .data has both)."""

    name: str
    address: int       # where it runs (VMA)
    load_address: int  # where it is stored (LMA)
    size: int
    region: str        # the board memory region holding `address`
    flash: int
    ram: int


@dataclass(frozen=True)
class MemoryUsage:
    flash_bytes: int
    ram_bytes: int        # sections in budgeted RAM (.data, .bss, the arena)
    reserved_bytes: int   # reserved regions (the stack), outside the RAM budget
    sections: tuple[Section, ...]


@dataclass(frozen=True)
class BuildResult:
    elf_path: Path
    memory: MemoryUsage
    key: str       # content hash naming the cache entry
    cached: bool   # True when make did not run

    @property
    def flash_bytes(self) -> int:
        return self.memory.flash_bytes

    @property
    def ram_bytes(self) -> int:
        return self.memory.ram_bytes

    @property
    def sections(self) -> tuple[Section, ...]:
        return self.memory.sections


def build_firmware(board: Board, gen_dir: str | Path, *, make_vars: Mapping[str, str] | None = None,
                   firmware_dir: Path = FIRMWARE_DIR, check_budget: bool = True,
                   timeout_s: float = BUILD_TIMEOUT_S) -> BuildResult:
    """The ELF for `board` with the generated sources in `gen_dir`, built or taken from the cache.

    `make_vars` are further make variables (e.g. {"EXTRA_CFLAGS": "-DMPQ_MAX_LAYERS=256"}); they
    are part of the cache key. HarnessError when the toolchain is missing, the build fails (the
    compiler's or linker's essential line), or, with `check_budget`, the image exceeds a budget.
    """
    board = board.firmware_board()  # renode-h743 runs the nucleo-h743 ELF
    baud = uart_baud(board)
    gen_dir = Path(gen_dir).resolve()
    if not gen_dir.is_dir():
        raise HarnessError(f"no generated sources at {gen_dir}")
    make_vars = {**({"UART_BAUD": str(baud)} if baud is not None else {}), **(make_vars or {})}
    key = build_key(board, gen_dir, firmware_dir, make_vars)
    out_dir = cache_dir("builds") / key
    cached = (out_dir / ELF_NAME).is_file()
    if cached:
        harness_cache.touch(out_dir)
    else:
        seconds = _run_make(board, gen_dir, firmware_dir, out_dir, make_vars, timeout_s)
        harness_cache.evict_to_cap()
    elf_path = out_dir / ELF_NAME
    memory = measure_elf(elf_path, board)
    if not cached:
        _console.print(f"built firmware for {board.name} in {seconds:.1f} s: flash {format_size(memory.flash_bytes)}, "
                       f"ram {format_size(memory.ram_bytes)} (+ {format_size(memory.reserved_bytes)} stack in its own region)", soft_wrap=True)
    if check_budget:
        check_budgets(memory, board)
    return BuildResult(elf_path=elf_path, memory=memory, key=key, cached=cached)


def uart_baud(board: Board) -> int | None:
    """The baud rate the firmware's UART is built for: the board's link (its file's [backend] baud,
    or --baud), None for boards without one (QEMU)."""
    baud = getattr(board.backend_settings, "baud", None)
    return baud if baud is not None else board.backend_options.get("baud")


def build_key(board: Board, gen_dir: Path, firmware_dir: Path = FIRMWARE_DIR,
              make_vars: Mapping[str, str] | None = None) -> str:
    """Hash of all that decides the ELF: firmware and generated sources, board, compiler, make variables."""
    digest = hashlib.sha256()
    settings = {"format": _CACHE_FORMAT, "board": board.name, "toolchain": toolchain_version(),
                **{f"make:{name}": value for name, value in sorted((make_vars or {}).items())}}
    for label, value in settings.items():
        digest.update(f"{label}={value}\n".encode())
    digest.update(b"board-file\n" + board.path.read_bytes())
    for label, root in (("firmware", firmware_dir), ("gen", gen_dir)):
        for path in _source_files(root):
            digest.update(f"{label}/{path.relative_to(root).as_posix()}\n".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:24]


def toolchain_status() -> ToolStatus:
    """Whether the firmware can be built here (shown by `harness boards`)."""
    try:
        return ToolStatus(True, toolchain_version())
    except HarnessError as error:
        return ToolStatus(False, str(error))


@cache
def toolchain_version() -> str:
    """The compiler's version line; HarnessError with the install command when it is missing."""
    for tool in (GCC, "make"):
        if shutil.which(tool) is None:
            raise HarnessError(f"{tool} not found; {TOOLCHAIN_INSTALL}")
    try:
        result = subprocess.run([GCC, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise HarnessError(f"{GCC} does not run ({error}); {TOOLCHAIN_INSTALL}") from None
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise HarnessError(f"{GCC} --version failed; {TOOLCHAIN_INSTALL}")
    return lines[0]


def measure_elf(elf_path: Path, board: Board) -> MemoryUsage:
    """Flash and RAM the ELF takes on `board` (see the module docstring for what counts)."""
    try:
        with open(elf_path, "rb") as stream:
            elf = ELFFile(stream)
            segments = [segment for segment in elf.iter_segments() if segment["p_type"] == "PT_LOAD"]
            sections = tuple(
                _section_usage(section, segments, board, elf_path)
                for section in elf.iter_sections()
                if section["sh_flags"] & SH_FLAGS.SHF_ALLOC and section["sh_size"] > 0
            )
    except (OSError, ELFError) as error:
        raise HarnessError(f"cannot read the firmware image {elf_path}: {error}") from None
    reserved = sum(region.size for region in board.memory if region.reserved)
    return MemoryUsage(
        flash_bytes=sum(section.flash for section in sections),
        ram_bytes=sum(section.ram for section in sections),
        reserved_bytes=reserved,
        sections=sections,
    )


def check_budgets(memory: MemoryUsage, board: Board) -> None:
    """HarnessError naming every budget of `board` that `memory` exceeds."""
    problems = [
        f"{kind} {format_size(used)} ({used} bytes) exceeds the {kind} budget {format_size(budget)} by {used - budget} bytes"
        for kind, used, budget in (("flash", memory.flash_bytes, board.budget.flash),
                                   ("ram", memory.ram_bytes, board.budget.ram))
        if used > budget
    ]
    if problems:
        raise HarnessError(f"firmware does not fit board {board.name}: " + "; ".join(problems))


def explain_build_failure(log: str, board: Board) -> str:
    """One line with the essential message of a failed build's output."""
    overflows = _REGION_OVERFLOW.findall(log)
    if overflows:
        return "; ".join(dict.fromkeys(_explain_overflow(region, int(n), board) for region, n in overflows))
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for pattern in _ESSENTIAL_LINES:
        for line in lines:
            if pattern.search(line):
                return f"firmware build failed: {line}"
    return f"firmware build failed: {lines[-1] if lines else 'make printed nothing'}"


_REGION_OVERFLOW = re.compile(r"region `(\w+)' overflowed by (\d+) bytes")
# most telling first: a compiler or linker error, then make's own complaint
_ESSENTIAL_LINES = (
    re.compile(r"(?<!collect2): (fatal )?error: "),
    re.compile(r"undefined reference to"),
    re.compile(r"\bld(\.bfd)?: "),  # the linker's own complaints, e.g. a failed ASSERT
    re.compile(r"\*\*\*"),
)


def _explain_overflow(region_name: str, n_bytes: int, board: Board) -> str:
    detail = f"region {region_name} overflowed by {n_bytes} bytes"
    region = board.region_named(region_name)
    if region is None:
        return f"firmware does not fit the board's memory: {detail}"
    budget = board.budget.of_kind(region.kind)
    return f"firmware does not fit the board's {region.kind} budget ({format_size(budget)}): {detail}"


def _run_make(board: Board, gen_dir: Path, firmware_dir: Path, out_dir: Path, make_vars: dict[str, str],
              timeout_s: float) -> float:
    """make into a scratch dir, then move it to `out_dir` at once (no half-built cache entries).

    Returns the seconds make took."""
    toolchain_version()  # a missing compiler is a clear error, not a make failure
    scratch = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        log_path = scratch / "build.log"
        variables = {**make_vars, "BOARD": board.name, "GEN": str(gen_dir), "OUT": str(scratch)}
        command = ["make", "-C", str(firmware_dir), f"-j{os.cpu_count() or 1}",
                   *(f"{name}={value}" for name, value in variables.items())]
        started = time.monotonic()
        with _console.status(f"building firmware for {board.name} (make, up to a minute)"):
            code = run_logged(command, log_path, timeout_s, env=_make_environment())
        if code is None:
            raise HarnessError(f"firmware build for {board.name} timed out after {timeout_s:g} s")
        if code != 0:
            kept_log = out_dir.parent / f"{out_dir.name}.failed.log"
            shutil.copyfile(log_path, kept_log)
            message = explain_build_failure(log_path.read_text(errors="replace"), board)
            raise HarnessError(f"{message} (log: {kept_log})")
        if not (scratch / ELF_NAME).is_file():
            raise HarnessError(f"make succeeded but wrote no {ELF_NAME} into OUT (see {firmware_dir}/Makefile)")
        _publish(scratch, out_dir)
        return time.monotonic() - started
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _make_environment() -> dict[str, str]:
    """The environment without what make would read as variables: a build depends on hashed inputs only."""
    return {name: value for name, value in os.environ.items() if name not in _MAKE_ENV_KNOBS}


def _publish(scratch: Path, out_dir: Path) -> None:
    """Rename the finished build into place; if a concurrent build of the same key won, keep its."""
    if out_dir.is_dir() and not (out_dir / ELF_NAME).is_file():
        shutil.rmtree(out_dir)  # an empty or broken entry (e.g. created by cache_dir)
    try:
        scratch.rename(out_dir)
    except OSError:
        if not (out_dir / ELF_NAME).is_file():
            raise


def _source_files(root: Path) -> list[Path]:
    """Every file under `root` except build outputs, in a stable order."""
    files = []
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in _SKIPPED_DIRS and not d.startswith("."))
        files.extend(Path(directory) / name for name in sorted(names) if Path(name).suffix not in _NOT_SOURCES)
    return files


def _section_usage(section, segments: list, board: Board, elf_path: Path) -> Section:
    address, size = section["sh_addr"], section["sh_size"]
    region = board.region_at(address)
    if region is None:
        raise HarnessError(f"{elf_path}: section {section.name} at {address:#010x} lies outside "
                           f"the memory regions of board {board.name} ({board.path.name})")
    load_address = _load_address(address, segments)
    load_region = board.region_at(load_address)
    stored = section["sh_type"] != "SHT_NOBITS" and load_region is not None and load_region.kind == "flash"
    in_ram = region.kind == "ram" and not region.reserved
    return Section(section.name, address, load_address, size, region.name,
                   flash=size if stored else 0, ram=size if in_ram else 0)


def _load_address(address: int, segments: list) -> int:
    """Where the loader stores what runs at `address` (LMA): .data runs in RAM, is stored in flash."""
    for segment in segments:
        if segment["p_vaddr"] <= address < segment["p_vaddr"] + segment["p_memsz"]:
            return segment["p_paddr"] + address - segment["p_vaddr"]
    return address


def build_graphs(graphs: list[Graph], board: Board, policy_hash: str = "",
                 mlperf: MlperfConfig | None = None) -> BuildResult:
    """Generate model.c for `graphs` and build the board's firmware around it: with the binary
    protocol's front end, or with `mlperf` the MLPerf Tiny one (one graph, docs/mlperf-tiny.md)."""
    suffix = f"-mlperf-{mlperf.digest()}" if mlperf is not None else ""
    gen_dir = cache_dir("generated", f"{model_hash(graphs)}-{policy_hash or 'none'}{suffix}")
    generate(graphs, gen_dir, policy_hash)
    if mlperf is None:
        return build_firmware(board, gen_dir)
    if len(graphs) != 1:
        raise HarnessError("the MLPerf Tiny front end serves one model")
    write_config(gen_dir, graphs[0], mlperf)
    return build_firmware(board, gen_dir, make_vars={"PROTOCOL": "mlperf-tiny"})
