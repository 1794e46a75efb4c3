"""The generated half of the MLPerf Tiny front end (firmware/runtime/mlperf_*.c, docs/mlperf-tiny.md):
mlperf_config.h/.c beside model.c, saying which MLPerf Tiny model the firmware claims to be,
how the bytes `db` loads become the network's integer input, and how outputs become scores.

Input formats per model id: ic01 and vww01 take uint8 RGB HWC pixels, kws01 int8 MFCC values,
ad01 float32 little-endian windows the device quantizes itself. A pixel or int8 value maps onto
the policy's input range exactly as a sample image's pixel does (harness.datasets.samples), through
a 256-entry table computed here; a float32 value is quantized on the device with the float32
arithmetic of harness.datasets.registry.quantize_real.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import HarnessError
from harness.files import write_atomic
from harness.ir.graph import Graph
from harness.ir.packing import row_bytes
from harness.policy import InputQuantization

# MLPerf Tiny model id -> (input shape H, W, C, the format of the loaded bytes)
MODELS = {
    "ic01": ((32, 32, 3), "uint8"),
    "kws01": ((49, 10, 1), "int8"),
    "vww01": ((96, 96, 3), "uint8"),
    "ad01": ((1, 1, 640), "float32"),
}
CUSTOM_FORMAT = "uint8"  # a build-time id other than the four takes uint8 HWC bytes
DUT_NAME = "mpq-harness"
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


@dataclass(frozen=True)
class MlperfConfig:
    """What the front end is built for: the id `profile` reports and the network input's quantization."""

    model_id: str
    input: InputQuantization
    dut_name: str = DUT_NAME

    @property
    def input_format(self) -> str:
        return MODELS[self.model_id][1] if self.model_id in MODELS else CUSTOM_FORMAT

    @property
    def scores_are_mse(self) -> bool:
        """ad01 answers one score: the mean squared error of the reconstruction."""
        return self.model_id == "ad01"

    def digest(self) -> str:
        return hashlib.sha256(repr(self).encode()).hexdigest()[:12]


def model_id_for(graph: Graph, requested: str | None = None) -> str:
    """The id to report: `requested` (checked), or the MLPerf Tiny model whose input shape the graph has."""
    shape = tuple(graph.tensors[graph.input].shape)
    if requested is not None:
        if not _ID.match(requested):
            raise HarnessError(f"--model-id {requested!r}: 1 to 32 letters, digits, '_', '.' or '-'")
        expected = MODELS.get(requested, (None,))[0]
        if expected is not None and expected != shape:
            raise HarnessError(f"--model-id {requested}: MLPerf Tiny's {requested} takes input {expected}, "
                               f"the model takes {shape}")
        return requested
    for model_id, (model_shape, _) in MODELS.items():
        if model_shape == shape:
            return model_id
    raise HarnessError(f"the model's input {shape} is none of MLPerf Tiny's "
                       f"({', '.join(f'{k} {v[0]}' for k, v in MODELS.items())}); give --model-id NAME")


def db_bytes(graph: Graph, config: MlperfConfig) -> int:
    """Bytes `db load` announces for one input."""
    h, w, c = graph.tensors[graph.input].shape
    return h * w * c * (4 if config.input_format == "float32" else 1)


def pixel_table(quant: InputQuantization) -> np.ndarray:
    """The integer input for each pixel value 0..255, as the datasets registry quantizes a sample
    image (pixels / 255 onto the input range, then quantized)."""
    from harness.datasets.registry import quantize_real, real_images

    pixels = np.arange(256, dtype=np.float32) / np.float32(255.0)
    return quantize_real(real_images(pixels, quant=quant), quant).astype(np.int64)


def byte_table(config: MlperfConfig) -> np.ndarray:
    """The integer input for each loaded byte: uint8 as a pixel, int8 v as the pixel v + 128."""
    table = pixel_table(config.input)
    if config.input_format == "int8":
        return table[np.arange(256) ^ 0x80]
    return table


def quantize_loaded(raw: bytes, graph: Graph, config: MlperfConfig) -> np.ndarray:
    """The integer input [H, W, C] the device makes of `raw` (what the tests compare with)."""
    shape = tuple(graph.tensors[graph.input].shape)
    if config.input_format == "float32":
        from harness.datasets.registry import quantize_real

        values = np.frombuffer(raw, dtype="<f4").reshape(shape)
        return quantize_real(values, config.input).astype(np.int32)
    return byte_table(config)[np.frombuffer(raw, dtype=np.uint8)].reshape(shape).astype(np.int32)


def write_config(gen_dir: Path, graph: Graph, config: MlperfConfig) -> None:
    """mlperf_config.h and mlperf_config.c into `gen_dir`."""
    inp, out = graph.tensors[graph.input], graph.tensors[graph.output]
    if inp.bits == 32 or inp.bits != config.input.bits:
        raise HarnessError(f"MLPerf Tiny front end: the network input has {inp.bits} bits, the policy says {config.input.bits}")
    inv_scale = np.float32(1.0) / np.float32(config.input.scale)
    table = byte_table(config)
    header = "\n".join([
        "/* Generated by harness/build/mlperf_config.py: the MLPerf Tiny front end's model facts. */",
        "#ifndef MLPERF_CONFIG_H", "#define MLPERF_CONFIG_H", "", "#include <stdint.h>", "",
        f"#define MLPERF_DB_BYTES {db_bytes(graph, config)}u",
        f"#define MLPERF_INPUT_FLOAT32 {int(config.input_format == 'float32')}",
        f"#define MLPERF_SCORE_IS_MSE {int(config.scores_are_mse)}",
        f"#define MLPERF_MAX_ROW_BYTES {row_bytes(inp.channels, inp.bits)}u",
        "extern const char mlperf_config_dut_name[];",
        "extern const char mlperf_config_model_id[];",
        "extern const uint8_t mlperf_input_lut[256];  /* loaded byte -> integer input */",
        "extern const float mlperf_input_inv_scale;   /* float32 inputs: q = rint(x * inv) + zp */",
        "extern const int32_t mlperf_input_zero_point;",
        "extern const int32_t mlperf_input_levels;",
        "extern const double mlperf_output_scale;     /* score = scale * (q - zero_point) */",
        "extern const int32_t mlperf_output_zero_point;",
        "", "#endif", ""])
    rows = [", ".join(str(int(v)) for v in table[i:i + 16]) for i in range(0, 256, 16)]
    source = "\n".join([
        "/* Generated by harness/build/mlperf_config.py. */",
        '#include "mlperf_config.h"', "",
        f'const char mlperf_config_dut_name[] = "{config.dut_name}";',
        f'const char mlperf_config_model_id[] = "{config.model_id}";',
        "const uint8_t mlperf_input_lut[256] = {", *(f"    {row}," for row in rows), "};",
        f"const float mlperf_input_inv_scale = {float(inv_scale).hex()}f; /* {float(inv_scale)!r} */",
        f"const int32_t mlperf_input_zero_point = {config.input.zero_point};",
        f"const int32_t mlperf_input_levels = {config.input.levels};",
        f"const double mlperf_output_scale = {float(out.scale).hex()}; /* {float(out.scale)!r} */",
        f"const int32_t mlperf_output_zero_point = {int(out.zero_point)};", ""])
    write_atomic(gen_dir / "mlperf_config.h", header)
    write_atomic(gen_dir / "mlperf_config.c", source)
