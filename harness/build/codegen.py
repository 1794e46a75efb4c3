"""C code generator: integer graphs -> model.c implementing firmware/runtime/mpq_model.h.

Layout of the generated model.c (for graphs 0..N-1, identifiers prefixed m<graph>_):
- a header comment stamped with the policy hash, model hash, harness version and generator;
- one static activation arena `mpq_arena`, 8-byte aligned, in section `.bss.arena` (a `.bss.*`
  name, so a linker script without a rule for it still puts it in .bss, never in flash); its
  size is the largest plan of all graphs: the protocol runs one model at a time, so they share it;
- per graph: its packed weights, bias, mult and shift as `static const` arrays (flash), one
  `mpq_dims_t` per tensor, one `mpq_window_t` per sliding-window layer, a requantization
  descriptor per layer; a channel-wise layer (docs/channelwise.md) gets one weights array,
  requantization descriptor and output-channel window per run of equal bits, called once each;
  per layer one function making its kernel calls, checked (mpq_<op>_check) or not
  (mpq_<op>_unchecked), and a table of them; a `run()` calling each unchecked between
  mpq_layer_begin(i)/mpq_layer_end(i), a `check()`, and its `mpq_model_t` (input and output
  point into the arena at the planner's offsets);
- kernel scratch sits in the arena where the planner put it (sized by
  harness.ir.planner.layer_scratch_bytes); check() compares every size with the kernels' own
  mpq_*_get_buffer_size() and returns MPQ_MODEL_ERR_SCRATCH (-2) if a kernel wants more, so the
  Python formula and the C dispatch can never drift apart silently, then passes every layer's
  calls mpq_<op>_check (MPQ_ERR_ARG, -1, if one is refused). The runtime calls check() before a
  run, outside its timed region; run() itself checks nothing, the arguments being constants
  (TFLite Micro's Prepare and Eval);
- `mpq_models[]`, `mpq_model_count`, `mpq_model_hash`, `mpq_policy_hash`, `mpq_arena_bytes`.

`mpq_model_hash` is `graph.hash()` for one graph; for several it is the first 16 hex digits of
sha256 over their hashes joined by commas, in order (see `model_hash`). Generation is
deterministic: the same graphs and policy hash give identical bytes.
"""
from __future__ import annotations

import hashlib
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import __version__
from harness.errors import HarnessError
from harness.files import write_atomic
from harness.ir.graph import Graph, Layer, Tensor, weight_runs
from harness.ir.packing import pack
from harness.ir.planner import ArenaPlan, kernel_for, plan_arena

GENERATOR = "harness.build.codegen"
ARENA_SECTION = ".bss.arena"
VALUES_PER_LINE = 16
_HEX = [f"0x{v:02x}" for v in range(256)]  # byte literals, looked up: weights can be megabytes
WINDOW_KERNELS = ("conv2d", "depthwise_conv2d", "avg_pool", "max_pool")
SCRATCH_KERNELS = ("conv2d", "pointwise", "depthwise_conv2d", "fully_connected")


@dataclass
class GeneratedSources:
    """What `generate` wrote and the numbers it fixed."""

    model_c: Path
    model_hash: str
    arena_bytes: int
    const_bytes: int  # weights, bias, mult and shift arrays (flash), not counting descriptors
    plans: list[ArenaPlan]


def model_hash(graphs: list[Graph]) -> str:
    """The firmware's model hash: graph.hash() of one graph, else a hash over all of them."""
    hashes = [g.hash() for g in graphs]
    if len(hashes) == 1:
        return hashes[0]
    return hashlib.sha256(",".join(hashes).encode()).hexdigest()[:16]


def generate(graphs: list[Graph], out_dir: str | Path, policy_hash: str = "") -> GeneratedSources:
    """Write out_dir/model.c for `graphs` (run by index through mpq_models[])."""
    if not graphs:
        raise HarnessError("codegen: no graph to generate")
    for graph in graphs:
        graph.validate()
    plans = [plan_arena(g) for g in graphs]
    arena_bytes = max(p.size for p in plans)
    digest = model_hash(graphs)
    blocks, const_bytes = zip(*(_model_source(i, g, p) for i, (g, p) in enumerate(zip(graphs, plans))))
    source = "\n".join([
        _stamp(policy_hash, digest),
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        '#include "mpq_model.h"',
        "",
        "/* check() status when a kernel wants more scratch than the planner gave it. */",
        "#define MPQ_MODEL_ERR_SCRATCH (-2)",
        f"#define MPQ_ARENA_BYTES {arena_bytes}u",
        "/* Activations of every model (one runs at a time); offsets from harness.ir.planner. */",
        f'static uint8_t mpq_arena[MPQ_ARENA_BYTES] __attribute__((aligned(8), section("{ARENA_SECTION}")));',
        "",
        *blocks,
        "const mpq_model_t *const mpq_models[] = {",
        *(f"    &m{i}_model," for i in range(len(graphs))),
        "};",
        f"const uint32_t mpq_model_count = {len(graphs)}u;",
        f"const char mpq_model_hash[] = {_c_string(digest)};",
        f"const char mpq_policy_hash[] = {_c_string(policy_hash)};",
        "const uint32_t mpq_arena_bytes = MPQ_ARENA_BYTES;",
        "",
    ])
    model_c = Path(out_dir) / "model.c"
    write_atomic(model_c, source)  # a concurrent build of the same model reads a whole file
    return GeneratedSources(model_c, digest, arena_bytes, sum(const_bytes), plans)


# -- one model ----------------------------------------------------------------------------------
@dataclass
class _LayerCode:
    declarations: list[str]
    const_bytes: int
    kernel: str  # the op of mpq_<kernel>_check / mpq_<kernel>_unchecked
    calls: list[str]  # the arguments of each kernel call (one per run of equal weight bits)
    scratch_check: str | None  # "size wanted <= size planned" for kernels taking scratch


def _model_source(index: int, graph: Graph, plan: ArenaPlan) -> tuple[str, int]:
    """C source of one graph (arrays, descriptors, run(), mpq_model_t) and its const bytes."""
    prefix = f"m{index}"
    dims = {name: f"{prefix}_dims{k}" for k, name in enumerate(plan.offsets)}
    lines = [f"/* ==== model {index}: {_comment(graph.name)} (hash {graph.hash()}), "
             f"arena {plan.size} bytes ==== */"]
    codes = [_layer_source(f"{prefix}_l{k}", graph, layer, plan, dims) for k, layer in enumerate(graph.layers)]
    used = " ".join(" ".join(code.calls + code.declarations) for code in codes)
    # a tensor only a flattening fully connected layer reads has its dims unreferenced
    lines += [f"static const mpq_dims_t {dims[name]}{'' if f'&{dims[name]},' in used else ' __attribute__((unused))'} = "
              f"{_dims(graph.tensors[name])};  /* {_comment(name)} @ arena + {offset} */"
              for name, offset in plan.offsets.items()]
    for k, (layer, code) in enumerate(zip(graph.layers, codes)):
        lines += ["", _layer_comment(k, graph, layer), *code.declarations, *_layer_calls(f"{prefix}_l{k}", code)]
    scratch_checks = [code.scratch_check for code in codes if code.scratch_check]
    inp, out = graph.tensors[graph.input], graph.tensors[graph.output]
    n = len(codes)
    lines += [
        "",
        "/* Each layer's kernel calls, checked (1) or run unchecked (0); loops over it keep the code per",
        " * layer to its calls (flash). */",
        f"static int (*const {prefix}_layers[{n}])(int check) = {{",
        *(f"    {prefix}_l{k}_calls," for k in range(n)),
        "};",
        "",
        "/* Scratch sizes come from harness.ir.planner: checked against the kernels' own; then every",
        " * layer's arguments, so that run() may call the kernels unchecked. */",
        f"static int {prefix}_check(void) {{",
        *(["    if (!(" + "\n          && ".join(scratch_checks) + ")) return MPQ_MODEL_ERR_SCRATCH;"] if scratch_checks else []),
        f"    for (uint32_t k = 0; k < {n}u; ++k) {{",
        f"        const int status = {prefix}_layers[k](1);",
        "        if (status != MPQ_OK) return status;",
        "    }",
        "    return MPQ_OK;",
        "}",
        "",
        f"static int {prefix}_run(void) {{",
        f"    for (uint32_t k = 0; k < {n}u; ++k) {{",
        "        mpq_layer_begin(k);",
        f"        {prefix}_layers[k](0);",
        "        mpq_layer_end(k);",
        "    }",
        "    return MPQ_OK;",
        "}",
        "",
        f"static const mpq_model_t {prefix}_model = {{",
        f"    .name = {_c_string(graph.name)},",
        f"    .in_dims = {_dims(inp)},",
        f"    .out_dims = {_dims(out)},",
        f"    .in_bytes = {inp.nbytes}u,",
        f"    .out_bytes = {out.nbytes}u,",
        f"    .input = mpq_arena + {plan.offsets[graph.input]},",
        f"    .output = mpq_arena + {plan.offsets[graph.output]},",
        f"    .n_layers = {len(graph.layers)}u,",
        f"    .run = {prefix}_run,",
        f"    .input_reused = {0 if plan.input_survives else 1}u,",
        f"    .check = {prefix}_check,",
        "};",
        "",
    ]
    return "\n".join(lines), sum(code.const_bytes for code in codes)


def _layer_calls(name: str, code: _LayerCode) -> list[str]:
    """The layer's kernel calls through mpq_<op>_check (check() passes 1) or mpq_<op>_unchecked
    (run() passes 0): the arguments are set up by one copy of the code."""
    *first, last = code.calls
    return [f"static int {name}_calls(int check) {{",
            f"    mpq_{code.kernel}_fn *const kernel = check ? mpq_{code.kernel}_check : mpq_{code.kernel}_unchecked;",
            *(["    int status;"] if first else []),
            *(f"    if ((status = kernel({args})) != MPQ_OK) return status;" for args in first),
            f"    return kernel({last});",
            "}"]


def _layer_source(name: str, graph: Graph, layer: Layer, plan: ArenaPlan, dims: dict[str, str]) -> _LayerCode:
    """Declarations of one layer's constants, their bytes, its kernel call and scratch check."""
    if layer.op == "add":
        return _add_source(name, graph, layer, plan, dims)
    kernel = kernel_for(layer)
    _check_fits(layer, graph.tensors[layer.input], graph.tensors[layer.output])
    in_offset = graph.in_offset(layer)
    bias, mult, shift = (np.asarray(a) for a in (layer.bias, layer.mult, layer.shift))
    declarations = [
        _c_array("int32_t", f"{name}_bias", bias),
        _c_array("int32_t", f"{name}_mult", mult),
        _c_array("int8_t", f"{name}_shift", shift),
        f"static const mpq_requant_t {name}_rq = {{{name}_bias, {name}_mult, {name}_shift}};",
    ]
    const_bytes = 4 * bias.size + 4 * mult.size + shift.size
    in_dims, out_dims = f"&{dims[layer.input]}", f"&{dims[layer.output]}"
    inp = graph.tensors[layer.input]
    if kernel == "fully_connected" and inp.shape[:2] != (1, 1):  # reads H x W x C as 1 x 1 x (H*W*C)
        flat = Tensor(inp.name, (1, 1, inp.size), inp.bits, inp.scale, inp.zero_point)
        _check_fits(layer, flat, graph.tensors[layer.output])
        declarations.append(f"static const mpq_dims_t {name}_flat = {_dims(flat)};  /* {_comment(inp.name)} flattened */")
        in_dims = f"&{name}_flat"
    args = [in_dims, f"mpq_arena + {plan.offsets[layer.input]}"]
    size_args = [in_dims]
    if kernel in WINDOW_KERNELS:
        declarations.append(f"static const mpq_window_t {name}_win = {_window(layer, in_offset)};")
        args.append(f"&{name}_win")
        size_args.append(f"&{name}_win")
    else:
        args.append(str(in_offset))
    scratch = ""
    if kernel in SCRATCH_KERNELS:
        offset = plan.scratch_offsets.get(layer.name)
        scratch = ", NULL" if offset is None else f", mpq_arena + {offset}"
    output = f"mpq_arena + {plan.offsets[layer.output]}"
    if layer.weights is None:
        return _LayerCode(declarations, const_bytes, kernel, [f"{', '.join(args)}, &{name}_rq, {out_dims}, {output}{scratch}"],
                          None)
    out = graph.tensors[layer.output]
    runs = weight_runs(layer, out.channels)
    if any(run.bits == 0 for run in runs):
        raise HarnessError(f"layer {layer.name}: pruned (0-bit) channels must be dropped before codegen "
                           "(harness.ir.channel_order.reorder)")
    calls, checks = [], []
    for k, run in enumerate(runs):
        run_name = name if len(runs) == 1 else f"{name}_r{k}"
        rows = layer.weights if len(runs) == 1 else layer.weights[run.start:run.start + run.count]
        weights = pack(rows, run.bits, signed=True).reshape(-1)
        declarations.insert(k, _c_array("uint8_t", f"{run_name}_weights", weights, aligned=True))
        const_bytes += weights.size
        rq, dims = f"&{name}_rq", out_dims
        if len(runs) > 1:  # an output-channel window: channels start .. start + count - 1 of the row
            declarations.append(f"static const mpq_requant_t {run_name}_rq = {{{name}_bias + {run.start}, "
                                f"{name}_mult + {run.start}, {name}_shift + {run.start}}};")
            window = Tensor(out.name, (*out.shape[:2], run.count), out.bits, out.scale)
            declarations.append(f"static const mpq_dims_t {run_name}_out = {_dims(window, run.start, out.channels)};")
            rq, dims = f"&{run_name}_rq", f"&{run_name}_out"
        calls.append(f"{', '.join(args)}, {run_name}_weights, {run.bits}u, {rq}, {dims}, {output}{scratch}")
        if kernel in SCRATCH_KERNELS:
            checks.append(f"mpq_{kernel}_get_buffer_size({', '.join(size_args)}, {run.bits}u, {dims}) <= "
                          f"{plan.scratch_sizes.get(layer.name, 0)}u")
    if len(calls) > 1:  # one call per run of equal bits, each with its own descriptor
        declarations = [d for d in declarations if not d.startswith(f"static const mpq_requant_t {name}_rq ")]
    return _LayerCode(declarations, const_bytes, kernel, calls, " && ".join(checks) or None)


def _add_source(name: str, graph: Graph, layer: Layer, plan: ArenaPlan, dims: dict[str, str]) -> _LayerCode:
    """mpq_add: both inputs' offsets, the two multipliers, the shift and the output zero-point."""
    for tensor in (layer.input, layer.input2):
        _check_fits(layer, graph.tensors[tensor], graph.tensors[layer.output])
    off1, off2 = (-graph.tensors[t].zero_point for t in (layer.input, layer.input2))
    params = (f"static const mpq_add_params_t {name}_add = {{.in1_offset = {off1}, .in2_offset = {off2}, "
              f".mult1 = {int(layer.mult[0])}, .mult2 = {int(layer.mult[1])}, .shift = {int(layer.shift[0])}, "
              f".out_offset = {int(layer.bias[0])}}};")
    args = [f"&{dims[layer.input]}", f"mpq_arena + {plan.offsets[layer.input]}",
            f"&{dims[layer.input2]}", f"mpq_arena + {plan.offsets[layer.input2]}",
            f"&{name}_add", f"&{dims[layer.output]}", f"mpq_arena + {plan.offsets[layer.output]}"]
    return _LayerCode([params], 0, "add", [", ".join(args)], None)


def _layer_comment(index: int, graph: Graph, layer: Layer) -> str:
    inp, out = graph.tensors[layer.input], graph.tensors[layer.output]
    second = f" + {_describe(graph.tensors[layer.input2])}" if layer.input2 else ""
    geometry = ""
    if kernel_for(layer) in WINDOW_KERNELS:
        (kh, kw), (sh, sw) = layer.kernel, layer.stride
        geometry = f" {kh}x{kw} stride {sh}x{sw} pad {layer.padding}"
    runs = weight_runs(layer, graph.tensors[layer.output].channels) if layer.w_bits else []
    weights = f", weights {' '.join(f'{r.count}x{r.bits}' for r in runs) if len(runs) > 1 else layer.w_bits} bits" if runs else ""
    return _comment_block(
        f"layer {index} {layer.name}: {layer.op}{geometry}{weights} -> mpq_{kernel_for(layer)}; "
        f"{_describe(inp)}{second} -> {_describe(out)}"
    )


# -- C syntax helpers ---------------------------------------------------------------------------
def _stamp(policy_hash: str, digest: str) -> str:
    return _comment_block(
        f"Generated by {GENERATOR} (mpq-harness {__version__}). Do not edit.\n"
        f"policy hash: {policy_hash or '(none)'}\n"
        f"model hash:  {digest}\n"
        f"tools: python {platform.python_version()}, numpy {np.__version__}"
    )


def _comment(text: str) -> str:
    """Text safe inside a C block comment."""
    return text.replace("*/", "* /").replace("\n", " ")


def _comment_block(text: str) -> str:
    lines = [_comment(line) for line in text.split("\n")]
    return "/*\n" + "".join(f" * {line}\n" for line in lines) + " */"


def _c_string(text: str) -> str:
    """A C string literal for any text (non-printable and non-ASCII bytes as octal escapes)."""
    out = []
    for byte in text.encode():
        char = chr(byte)
        if char in '"\\?':
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def _c_int(value: int) -> str:
    return "(-2147483647 - 1)" if value == -(2**31) else str(value)


def _c_array(ctype: str, name: str, values: np.ndarray, aligned: bool = False) -> str:
    """`static const ctype name[n] = {...};` (bytes in hex), VALUES_PER_LINE values a line."""
    items = [_HEX[v] for v in values.tolist()] if ctype == "uint8_t" else [_c_int(v) for v in values.tolist()]
    rows = [", ".join(items[i:i + VALUES_PER_LINE]) for i in range(0, len(items), VALUES_PER_LINE)]
    attribute = " __attribute__((aligned(4)))" if aligned else ""
    body = "".join(f"    {row},\n" for row in rows)
    return f"static const {ctype} {name}[{len(items)}]{attribute} = {{\n{body}}};"


def _dims(tensor: Tensor, c0: int = 0, row_c: int = 0) -> str:
    """mpq_dims_t of a whole tensor, or of the output-channel window c0 .. c0 + c - 1 of rows of row_c."""
    h, w, c = tensor.shape
    return f"{{{h}, {w}, {c}, {tensor.bits}, {c0}, {row_c}}}"


def _window(layer: Layer, in_offset: int) -> str:
    (kh, kw), (sh, sw), (pt, pl) = layer.kernel, layer.stride, layer.padding[:2]
    return (f"{{.kh = {kh}, .kw = {kw}, .sh = {sh}, .sw = {sw}, "
            f".pad_top = {pt}, .pad_left = {pl}, .in_offset = {in_offset}}}")


def _describe(tensor: Tensor) -> str:
    h, w, c = tensor.shape
    kind = "int32" if tensor.bits == 32 else f"u{tensor.bits}"
    zero_point = f" zp {tensor.zero_point}" if tensor.zero_point else ""
    return f"{_comment(tensor.name)} {h}x{w}x{c} {kind}{zero_point}"


def _check_fits(layer: Layer, inp: Tensor, out: Tensor) -> None:
    """The C descriptors hold dims in uint16 and window fields in uint8: refuse what overflows."""
    for tensor in (inp, out):
        if max(tensor.shape) > 0xFFFF:
            raise HarnessError(f"layer {layer.name}: tensor {tensor.name} dims {tensor.shape} exceed 65535")
    window = (*layer.kernel, *layer.stride, *layer.padding[:2])
    if max(window) > 0xFF:
        raise HarnessError(f"layer {layer.name}: kernel/stride/padding {window} exceed 255")
