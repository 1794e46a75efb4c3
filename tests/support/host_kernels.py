"""The C kernels (firmware/kernels) built for the host and called through ctypes.

Tests use this to check the portable kernels bit-exactly against harness.ir.reference: a layer of
an IR graph becomes one KernelCall holding the packed tensors and the C structs; running it
surrounds the output and scratch buffers with canary bytes to catch writes past their ends.
"""
from __future__ import annotations

import ctypes
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.ir import reference
from harness.ir.graph import Graph
from harness.ir.packing import pack
from harness.paths import FIRMWARE_DIR
from harness.pytest_plugin import require_tools

KERNELS_DIR = FIRMWARE_DIR / "kernels"
SOURCES = tuple(sorted((KERNELS_DIR / "src").glob("*.c")))
HOST_CFLAGS = ("-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared")
COMPILE_TIMEOUT_S = 120

MPQ_OK = 0
MPQ_ERR_ARG = -1
CANARY = 0xA5
CANARY_BYTES = 32
WINDOWED = ("conv2d", "depthwise_conv2d")  # kernels taking an mpq_window_t
KERNELS = ("conv2d", "pointwise", "depthwise_conv2d", "fully_connected", "global_avg_pool")
M7_KERNELS = ("conv2d", "pointwise", "depthwise_conv2d", "fully_connected", "global_avg_pool")  # with an _m7 kernel


def impls_of(kernel: str) -> tuple[str, ...]:
    """Suffixes of the kernel's implementations: the portable "_ref" and, where there is one, "_m7"."""
    return ("_ref", "_m7") if kernel in M7_KERNELS else ("_ref",)


class Dims(ctypes.Structure):
    """mpq_dims_t; c0 and row_c make an output-channel window (0, 0: whole rows)."""
    _fields_ = [("h", ctypes.c_uint16), ("w", ctypes.c_uint16), ("c", ctypes.c_uint16), ("bits", ctypes.c_uint8),
                ("c0", ctypes.c_uint16), ("row_c", ctypes.c_uint16)]


class Window(ctypes.Structure):
    _fields_ = [("kh", ctypes.c_uint8), ("kw", ctypes.c_uint8), ("sh", ctypes.c_uint8), ("sw", ctypes.c_uint8),
                ("pad_top", ctypes.c_uint8), ("pad_left", ctypes.c_uint8), ("in_offset", ctypes.c_int32)]


class Requant(ctypes.Structure):
    _fields_ = [("bias", ctypes.c_void_p), ("mult", ctypes.c_void_p), ("shift", ctypes.c_void_p)]


_P = ctypes.POINTER
_VP, _U8, _I32, _U32 = ctypes.c_void_p, ctypes.c_uint8, ctypes.c_int32, ctypes.c_uint32
_WINDOWED_ARGS = [_P(Dims), _VP, _P(Window), _VP, _U8, _P(Requant), _P(Dims), _VP, _VP]
_MATVEC_ARGS = [_P(Dims), _VP, _I32, _VP, _U8, _P(Requant), _P(Dims), _VP, _VP]
_SIGNATURES = {  # kernel -> (run argtypes, get_buffer_size argtypes or None)
    "conv2d": (_WINDOWED_ARGS, [_P(Dims), _P(Window), _U8, _P(Dims)]),
    "depthwise_conv2d": (_WINDOWED_ARGS, [_P(Dims), _P(Window), _U8, _P(Dims)]),
    "pointwise": (_MATVEC_ARGS, [_P(Dims), _U8, _P(Dims)]),
    "fully_connected": (_MATVEC_ARGS, [_P(Dims), _U8, _P(Dims)]),
    "global_avg_pool": ([_P(Dims), _VP, _I32, _P(Requant), _P(Dims), _VP], None),
}


@dataclass(frozen=True)
class HostKernels:
    """The kernel sources built twice for the host: as shipped (the wrappers pick the _m7 kernels)
    and with -DMPQ_FORCE_REF (the wrappers pick the _ref kernels), so that each implementation is
    run with exactly the scratch its own get_buffer_size() asks for."""

    shipped: ctypes.CDLL
    forced_ref: ctypes.CDLL

    def lib_for(self, impl: str) -> ctypes.CDLL:
        return self.forced_ref if impl == "_ref" else self.shipped


def build_library(out_dir: Path) -> HostKernels:
    """Both host builds of the kernels (HostKernels)."""
    require_tools("cc")
    return HostKernels(_build(out_dir / "libmpq_kernels.so", ()),
                       _build(out_dir / "libmpq_kernels_ref.so", ("-DMPQ_FORCE_REF",)))


def _build(library: Path, defines: tuple[str, ...]) -> ctypes.CDLL:
    """Compile every kernel source into one shared library and declare the C signatures."""
    cmd = ["cc", *HOST_CFLAGS, *defines, f"-I{KERNELS_DIR / 'include'}", *map(str, SOURCES), "-o", str(library)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
    if result.returncode != 0:
        raise RuntimeError(f"kernel build failed: {' '.join(cmd)}\n{result.stderr}")
    lib = ctypes.CDLL(str(library))
    for kernel, (run_args, size_args) in _SIGNATURES.items():
        for impl in ("", "_check", "_unchecked", *impls_of(kernel)):
            getattr(lib, f"mpq_{kernel}{impl}").argtypes = run_args
            getattr(lib, f"mpq_{kernel}{impl}").restype = ctypes.c_int
        if size_args is not None:
            getattr(lib, f"mpq_{kernel}_get_buffer_size").argtypes = size_args
            getattr(lib, f"mpq_{kernel}_get_buffer_size").restype = ctypes.c_uint32
    return lib


def _dims(shape: tuple[int, int, int], bits: int) -> Dims:
    return Dims(*shape, bits)


def _contiguous(array: np.ndarray | None, dtype) -> np.ndarray | None:
    return None if array is None else np.ascontiguousarray(array, dtype=dtype)


@dataclass
class Outcome:
    """What one kernel call did: return code, the output bytes, and whether it stayed in bounds."""

    rc: int
    output: bytes
    output_overrun: bool
    scratch_overrun: bool


@dataclass
class KernelCall:
    """One kernel call as the C API takes it. Fields may be altered to test the argument checks."""

    kernel: str
    in_dims: Dims
    out_dims: Dims
    window: Window
    in_offset: int
    x: np.ndarray  # packed input rows
    w: np.ndarray | None  # packed weight rows
    w_bits: int
    bias: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    out_nbytes: int

    @classmethod
    def from_graph(cls, kernel: str, graph: Graph, x: np.ndarray) -> "KernelCall":
        """The call computing the graph's only layer on the unpacked input x with `kernel`."""
        (layer,) = graph.layers
        inp, out = graph.tensors[layer.input], graph.tensors[layer.output]
        weights = None if layer.weights is None else pack(layer.weights, layer.w_bits, signed=True)
        in_shape = (1, 1, inp.size) if kernel == "fully_connected" else inp.shape  # read flattened, as codegen passes it
        return cls(
            kernel=kernel,
            in_dims=_dims(in_shape, inp.bits),
            out_dims=_dims(out.shape, out.bits),
            window=Window(*layer.kernel, *layer.stride, *layer.padding[:2], graph.in_offset(layer)),
            in_offset=graph.in_offset(layer),
            x=_contiguous(pack(x, inp.bits, signed=False), np.uint8),
            w=_contiguous(weights, np.uint8),
            w_bits=layer.w_bits or 0,
            bias=_contiguous(layer.bias, np.int32),
            mult=_contiguous(layer.mult, np.int32),
            shift=_contiguous(layer.shift, np.int8),
            out_nbytes=out.nbytes,
        )

    def buffer_size(self, lib: ctypes.CDLL) -> int:
        """mpq_<kernel>_get_buffer_size(): the scratch of the kernel the wrapper picks (0 for none)."""
        if self.kernel == "global_avg_pool":
            return 0
        get = getattr(lib, f"mpq_{self.kernel}_get_buffer_size")
        if self.kernel in WINDOWED:
            return get(ctypes.byref(self.in_dims), ctypes.byref(self.window), self.w_bits, ctypes.byref(self.out_dims))
        return get(ctypes.byref(self.in_dims), self.w_bits, ctypes.byref(self.out_dims))

    def run(self, kernels: HostKernels, impl: str = "", scratch_bytes: int | None = None,
            scratch_misalign: int = 0, null_scratch: bool = False, y: np.ndarray | None = None) -> Outcome:
        """Call mpq_<kernel><impl> (impl "" = the dispatching wrapper, "_ref" = the portable kernel,
        "_m7" = the Cortex-M7 kernel, built for the host with C stand-ins for the DSP instructions;
        "_check" = the wrapper's checks alone, "_unchecked" = the wrapper without them).

        Output and scratch are pre-filled with canary bytes, so the output must be fully written
        (row tail bits included) and nothing may be written past either buffer. `y` (out_nbytes
        plus CANARY_BYTES canary bytes) is an output buffer shared by several windowed calls.
        """
        lib = kernels.lib_for(impl)
        if scratch_bytes is None:
            scratch_bytes = self.buffer_size(lib)
        y = np.full(self.out_nbytes + CANARY_BYTES, CANARY, dtype=np.uint8) if y is None else y
        scratch = np.full(scratch_misalign + scratch_bytes + CANARY_BYTES, CANARY, dtype=np.uint8)
        scratch_ptr = None if null_scratch else scratch.ctypes.data + scratch_misalign
        rq = Requant(self.bias.ctypes.data, self.mult.ctypes.data, self.shift.ctypes.data)
        w_ptr = None if self.w is None else self.w.ctypes.data
        fn = getattr(lib, f"mpq_{self.kernel}{impl}")
        io = (ctypes.byref(self.in_dims), self.x.ctypes.data)
        if self.kernel == "global_avg_pool":
            rc = fn(*io, self.in_offset, ctypes.byref(rq), ctypes.byref(self.out_dims), y.ctypes.data)
        elif self.kernel in WINDOWED:
            rc = fn(*io, ctypes.byref(self.window), w_ptr, self.w_bits, ctypes.byref(rq),
                    ctypes.byref(self.out_dims), y.ctypes.data, scratch_ptr)
        else:
            rc = fn(*io, self.in_offset, w_ptr, self.w_bits, ctypes.byref(rq),
                    ctypes.byref(self.out_dims), y.ctypes.data, scratch_ptr)
        return Outcome(
            rc=rc,
            output=y[: self.out_nbytes].tobytes(),
            output_overrun=bool((y[self.out_nbytes:] != CANARY).any()),
            scratch_overrun=bool((scratch[scratch_misalign + scratch_bytes:] != CANARY).any()),
        )


def expected_output(graph: Graph, x: np.ndarray) -> bytes:
    """The reference output as the kernels must store it: packed rows, or little-endian int32."""
    out = graph.tensors[graph.output]
    y = reference.predict(graph, x)
    if out.bits == 32:
        return y.astype("<i4").tobytes()
    return pack(y, out.bits, signed=False).tobytes()
