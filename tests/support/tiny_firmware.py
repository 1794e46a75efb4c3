"""A tiny bare-metal ELF for the qemu-m7 memory map, compiled in a test's tmp dir.

It prints a line forever on CMSDK UART0 (0x40004000) and carries a .data table and a .bss
array of chosen sizes, so the QEMU backend and the ELF memory accounting can be tested before
(and independently of) the real firmware.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

from harness.pytest_plugin import require_tools

GCC = "arm-none-eabi-gcc"
MESSAGE = b"tiny firmware alive\n"

_SOURCE = r"""
#include <stdint.h>
#if __has_include("sizes.h")
#include "sizes.h"  /* a test's "generated source": DATA_BYTES and BSS_BYTES */
#endif
#define UART0 ((volatile uint32_t *)0x40004000u)  /* DATA, STATE, CTRL, INTSTATUS, BAUDDIV */
extern uint32_t __stack_top;
void reset(void);
__attribute__((section(".vectors"), used)) const void *const vectors[2] = { &__stack_top, reset };
const char message[] = "tiny firmware alive\n";
volatile uint8_t table[DATA_BYTES] = { 1 };   /* .data: RAM, load image in flash */
volatile uint8_t zeroed[BSS_BYTES];           /* .bss */
void reset(void) {
    UART0[4] = 16;  /* BAUDDIV */
    UART0[2] = 1;   /* CTRL: TX enable */
    for (;;) {
        for (const char *c = message; *c; ++c) {
            while (UART0[1] & 1u) { }  /* STATE: TX buffer full */
            UART0[0] = (uint32_t)*c;
            (void)table[0]; (void)zeroed[0];
        }
    }
}
"""

_LINKER_SCRIPT = """
MEMORY {
  FLASH (rx) : ORIGIN = 0x00000000, LENGTH = %(flash)d
  RAM (rwx)  : ORIGIN = 0x20000000, LENGTH = 512K
  STACK (rw) : ORIGIN = 0x60000000, LENGTH = 128K
}
SECTIONS {
  .text : { KEEP(*(.vectors)) *(.text*) *(.rodata*) } > FLASH
  .ARM.exidx : { *(.ARM.exidx*) } > FLASH
  .data : { *(.data*) } > RAM AT > FLASH
  .bss (NOLOAD) : { *(.bss*) *(COMMON) } > RAM
  .stack (NOLOAD) : { . = ALIGN(8); . += LENGTH(STACK); __stack_top = .; } > STACK
}
"""


def require_toolchain() -> None:
    require_tools(GCC)


def write_sources(directory: Path, flash_bytes: int = 2 * 1024 * 1024) -> list[str]:
    """Write tiny.c and tiny.ld into `directory`; the gcc command compiling and linking them.

    The command ends with "-o"; append the ELF path. Without a sizes.h on the include path the
    sizes come from -DDATA_BYTES=... -DBSS_BYTES=... (see build_tiny_elf).
    """
    (directory / "tiny.c").write_text(_SOURCE)
    (directory / "tiny.ld").write_text(_LINKER_SCRIPT % {"flash": flash_bytes})
    return [GCC, "-mcpu=cortex-m7", "-mthumb", "-O1", "-nostdlib", "-nostartfiles",
            "-T", str(directory / "tiny.ld"), str(directory / "tiny.c"), "-o"]


def build_tiny_elf(directory: Path, data_bytes: int = 64, bss_bytes: int = 256,
                   flash_bytes: int = 2 * 1024 * 1024) -> Path:
    """Compile the tiny firmware into `directory`; skips the test when the toolchain is missing.

    A link failure (e.g. a too small flash) raises CalledProcessError with the linker's stderr.
    """
    require_toolchain()
    elf = directory / "tiny.elf"
    command = write_sources(directory, flash_bytes) + [str(elf), f"-DDATA_BYTES={data_bytes}", f"-DBSS_BYTES={bss_bytes}"]
    subprocess.run(command, check=True, timeout=60, capture_output=True, text=True)
    return elf
