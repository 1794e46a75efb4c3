"""Export a model as a self-contained C library for the user's own firmware.

    export_library(graph, board, out_dir, policy_hash)

writes out_dir/
- src/model.c          the generated model (harness.build.codegen, byte for byte the firmware's)
- src/mpq_model_api.c  `mpq_model_run()` and no-op layer hooks (define MPQ_EXPORT_LAYER_HOOKS to
                       supply your own mpq_layer_begin/end, e.g. to time layers)
- src/mpq_*.c          the kernel library (firmware/kernels/src; the dispatcher references every
                       kernel, unused ones are dropped by -ffunction-sections + --gc-sections)
- include/             mpq_kernels.h, mpq_model.h, mpq_model_api.h (sizes, shapes, bits, hash)
- mpq_model.mk         a Makefile fragment: MPQ_MODEL_SRC, MPQ_MODEL_INC, MPQ_MODEL_CFLAGS
- mpq_model.cmake      a CMake file defining the static library target `mpq_model`
- CMakeLists.txt       the same as a stand-alone project (add_subdirectory works too)
- README.md            the API, how to build it, and the model's memory figures

Nothing in it depends on the harness, the runtime, the UART protocol or a BSP.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from harness.boards import Board
from harness.build.codegen import generate
from harness.errors import HarnessError
from harness.ir.graph import Graph
from harness.ir.memory import memory_report
from harness.paths import FIRMWARE_DIR

KERNEL_DIR = FIRMWARE_DIR / "kernels"
MODEL_HEADER = FIRMWARE_DIR / "runtime" / "mpq_model.h"
# the compiler flags the kernels need (Cortex-M7 with its FPU); the user's own flags go beside them
CFLAGS = "-mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-d16 -std=c11 -ffunction-sections -fdata-sections"


@dataclass(frozen=True)
class ExportedLibrary:
    """Where the library went and the figures its README states."""

    out_dir: Path
    model_hash: str
    in_bytes: int
    out_bytes: int
    arena_bytes: int
    const_bytes: int
    predicted_flash_bytes: int


def export_library(graph: Graph, board: Board, out_dir: Path, policy_hash: str = "") -> ExportedLibrary:
    """Write the library for `graph` into `out_dir` (created; must not hold anything else)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise HarnessError(f"--out {out_dir}: must be a new or empty directory")
    src, include = out_dir / "src", out_dir / "include"
    include.mkdir(parents=True, exist_ok=True)
    generated = generate([graph], src, policy_hash)
    for source in sorted((KERNEL_DIR / "src").iterdir()):
        shutil.copy2(source, src / source.name)  # the .c files and their private headers
    shutil.copy2(KERNEL_DIR / "include" / "mpq_kernels.h", include)
    shutil.copy2(MODEL_HEADER, include)
    in_tensor, out_tensor = graph.tensors[graph.input], graph.tensors[graph.output]
    library = ExportedLibrary(out_dir, generated.model_hash, in_tensor.nbytes, out_tensor.nbytes,
                              generated.arena_bytes, generated.const_bytes, memory_report(graph).flash_bytes)
    (include / "mpq_model_api.h").write_text(_api_header(library, in_tensor, out_tensor))
    (src / "mpq_model_api.c").write_text(_API_SOURCE)
    (out_dir / "mpq_model.mk").write_text(_MAKE_FRAGMENT.format(cflags=CFLAGS))
    (out_dir / "mpq_model.cmake").write_text(_CMAKE_FILE.format(cflags=CFLAGS.replace(" ", ";")))
    (out_dir / "CMakeLists.txt").write_text(_CMAKE_PROJECT)
    (out_dir / "README.md").write_text(_readme(library, graph, board, in_tensor, out_tensor))
    return library


def _api_header(library: ExportedLibrary, in_tensor, out_tensor) -> str:
    (ih, iw, ic), (oh, ow, oc) = in_tensor.shape, out_tensor.shape
    return f"""/* The exported model's API (written by `harness export`; model hash {library.model_hash}). */
#ifndef MPQ_MODEL_API_H
#define MPQ_MODEL_API_H

#include <stdint.h>

/* Input: {ih} x {iw} x {ic} (H x W x C, NHWC), {in_tensor.bits}-bit unsigned values packed along C,
 * every pixel starting on a byte boundary (docs/integer-arithmetic.md of mpq-harness). */
#define MPQ_MODEL_IN_H {ih}u
#define MPQ_MODEL_IN_W {iw}u
#define MPQ_MODEL_IN_C {ic}u
#define MPQ_MODEL_IN_BITS {in_tensor.bits}u
#define MPQ_MODEL_IN_BYTES {library.in_bytes}u
/* Output: {oh} x {ow} x {oc}, {'int32 little-endian' if out_tensor.bits == 32 else f'{out_tensor.bits}-bit packed like the input'}. */
#define MPQ_MODEL_OUT_H {oh}u
#define MPQ_MODEL_OUT_W {ow}u
#define MPQ_MODEL_OUT_C {oc}u
#define MPQ_MODEL_OUT_BITS {out_tensor.bits}u
#define MPQ_MODEL_OUT_BYTES {library.out_bytes}u
/* Static activation arena inside the library (.bss), bytes. */
#define MPQ_MODEL_ARENA_BYTES {library.arena_bytes}u
#define MPQ_MODEL_HASH "{library.model_hash}"

/* Run the model once: copies MPQ_MODEL_IN_BYTES from `input` into the arena, runs every layer and
 * copies MPQ_MODEL_OUT_BYTES of output to `output`. Returns 0 on success, a negative status
 * otherwise (then `output` is not written): the first call checks every layer's arguments (-1 if a
 * kernel refuses them, -2 if it wants more scratch) before any runs; later calls skip the checks.
 * Not reentrant: the arena is shared. */
int mpq_model_run(const uint8_t *input, uint8_t *output);

#endif /* MPQ_MODEL_API_H */
"""


_API_SOURCE = """/* mpq_model_run() over the generated model (written by `harness export`). */
#include <string.h>

#include "mpq_model.h"
#include "mpq_model_api.h"

#ifndef MPQ_EXPORT_LAYER_HOOKS
/* Called around every layer; define MPQ_EXPORT_LAYER_HOOKS and your own to time layers. */
void mpq_layer_begin(uint32_t layer_index) {
    (void)layer_index;
}

void mpq_layer_end(uint32_t layer_index) {
    (void)layer_index;
}
#endif

int mpq_model_run(const uint8_t *input, uint8_t *output) {
    static int checked; /* the model's arguments are constants: one check() serves every run */
    const mpq_model_t *model = mpq_models[0];
    if (!checked) {
        const int status = model->check();
        if (status != 0) {
            return status;
        }
        checked = 1;
    }
    memcpy(model->input, input, model->in_bytes);
    int status = model->run();
    if (status == 0) {
        memcpy(output, model->output, model->out_bytes);
    }
    return status;
}
"""

_MAKE_FRAGMENT = """# Makefile fragment of the exported model (written by `harness export`). In your Makefile:
#   MPQ_MODEL_DIR := path/to/this/directory
#   include $(MPQ_MODEL_DIR)/mpq_model.mk
#   SRC += $(MPQ_MODEL_SRC)
#   CFLAGS += $(MPQ_MODEL_CFLAGS) $(addprefix -I,$(MPQ_MODEL_INC))
# and link with -Wl,--gc-sections so the kernels this model does not call are dropped.
MPQ_MODEL_DIR ?= $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
MPQ_MODEL_SRC := $(wildcard $(MPQ_MODEL_DIR)/src/*.c)
MPQ_MODEL_INC := $(MPQ_MODEL_DIR)/include $(MPQ_MODEL_DIR)/src
MPQ_MODEL_CFLAGS := {cflags}
"""

_CMAKE_FILE = """# CMake file of the exported model (written by `harness export`): include() it, or use the
# CMakeLists.txt beside it with add_subdirectory(). Defines the static library target mpq_model.
set(MPQ_MODEL_DIR ${{CMAKE_CURRENT_LIST_DIR}})
file(GLOB MPQ_MODEL_SRC ${{MPQ_MODEL_DIR}}/src/*.c)
add_library(mpq_model STATIC ${{MPQ_MODEL_SRC}})
target_include_directories(mpq_model PUBLIC ${{MPQ_MODEL_DIR}}/include PRIVATE ${{MPQ_MODEL_DIR}}/src)
target_compile_options(mpq_model PUBLIC {cflags})
set_property(TARGET mpq_model PROPERTY C_STANDARD 11)
"""

_CMAKE_PROJECT = """cmake_minimum_required(VERSION 3.16)
project(mpq_model C)
include(${CMAKE_CURRENT_LIST_DIR}/mpq_model.cmake)
"""


def _readme(library: ExportedLibrary, graph: Graph, board: Board, in_tensor, out_tensor) -> str:
    return f"""# Exported model {library.model_hash}

Written by `harness export` (mpq-harness) for board `{board.name}` ({board.cpu}). A self-contained
C library: the generated model (`src/model.c`), the mixed-precision kernels, their headers and
`mpq_model_run()`. It needs only a C11 compiler for the Cortex-M7 (arm-none-eabi-gcc) and the C
library's `memcpy`; no harness runtime, UART protocol or board support.

## API (`include/mpq_model_api.h`)

```c
#include "mpq_model_api.h"

static uint8_t input[MPQ_MODEL_IN_BYTES], output[MPQ_MODEL_OUT_BYTES];
int status = mpq_model_run(input, output);  /* 0 on success */
```

- input: {' x '.join(map(str, in_tensor.shape))} (H x W x C), {in_tensor.bits}-bit unsigned, packed along C, each pixel on a byte boundary: {library.in_bytes} bytes
- output: {' x '.join(map(str, out_tensor.shape))}, {out_tensor.bits}-bit: {library.out_bytes} bytes
- not reentrant (one static arena); layer hooks `mpq_layer_begin/end` are no-ops unless you
  define `MPQ_EXPORT_LAYER_HOOKS` and write your own.

## Memory

| what | bytes |
|---|---|
| weights, biases and requantization constants (flash, `const`) | {library.const_bytes} |
| activation arena (RAM, `.bss`) | {library.arena_bytes} |
| flash predicted by the harness's memory model (constants + kernel code estimate) | {library.predicted_flash_bytes} |

The kernels this model does not call are removed at link time with `-ffunction-sections`
(set in the build files) and `-Wl,--gc-sections` (add it to your link flags).

## Building

Make: `include mpq_model.mk`, then add `$(MPQ_MODEL_SRC)` to your sources and
`$(MPQ_MODEL_CFLAGS) $(addprefix -I,$(MPQ_MODEL_INC))` to your flags (see the fragment's comment).

CMake: `add_subdirectory(path/to/this/directory)` (or `include(.../mpq_model.cmake)`) and
`target_link_libraries(your_firmware PRIVATE mpq_model)`, with a Cortex-M7 cross toolchain.

Optimize (`-O2` or `-O3`, CMake's Release): the streaming kernels' inner loops are inline
assembly that needs the frame pointer omitted (GCC's default from `-O1` up); an unoptimized build
runs their portable loops. If your flags keep a register reserved (`-fno-omit-frame-pointer`,
`-ffixed-r9`), add `-DMPQ_M7_NO_ASM`, or GCC stops with "'asm' operand has impossible constraints".

The graph has {len(graph.layers)} layers; its outputs are bit-exact with the harness's host reference.
"""
