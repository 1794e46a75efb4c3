"""Run the exact nucleo-h743 ELF in unicorn (Cortex-M7 Thumb-2 with DSP) far enough to prove it
boots, answers the protocol and computes: a BOOT CHECK, not a product emulator.

Nothing on this machine runs an STM32H743 otherwise, so the model covers only what
firmware/bsp/stm32h7 touches, each register as simply as the BSP's use of it allows:
- RCC: HSIRDY/PLL1RDY follow HSION/PLL1ON (or PLL1RDY never, pll_locks=False), SWS follows SW; PWR: ACTVOSRDY and VOSRDY always set;
- FLASH_ACR, GPIOD, SYSCFG: plain storage (the BSP reads the latency back);
- USART3: TXE always set, TDR appends to `tx`, RXNE while `rx` holds bytes, RDR takes one;
- DWT CYCCNT: advances a fixed CYCCNT_STEP per read (monotonic, deterministic; no cycle model);
- SCB: storage, with CCSIDR describing the M7's 16 kB 4-way data cache.
No interrupt is delivered (unicorn has no NVIC); the BSP also drains the UART when polled, which is
what makes it usable here. The core idles at the WFI in bsp_uart_wait: running stops there, and
the host side (UartPort) resumes after it once it has sent bytes.
"""
from __future__ import annotations

from collections import deque
from pathlib import Path

from elftools.elf.elffile import ELFFile
from unicorn import UC_ARCH_ARM, UC_MODE_MCLASS, UC_MODE_THUMB, Uc, UcError
from unicorn.arm_const import UC_ARM_REG_PC, UC_ARM_REG_SP, UC_CPU_ARM_CORTEX_M7

MEMORY = {"flash": (0x08000000, 2 << 20), "axi_sram": (0x24000000, 512 << 10), "dtcm": (0x20000000, 128 << 10)}
CYCCNT_STEP = 1000
WFI = b"\x30\xbf"  # Thumb encoding of WFI
RUN_LIMIT_US = 60_000_000  # one emulator slice; a healthy firmware idles long before

# register addresses (RM0433, ARMv7-M), mirrored from firmware/bsp/stm32h7/stm32h7_regs.h
RCC_CR, RCC_CFGR = 0x58024400, 0x58024410
PWR_CSR1, PWR_D3CR = 0x58024804, 0x58024818
USART3 = 0x40004800
USART_ISR, USART_RDR, USART_TDR = USART3 + 0x1C, USART3 + 0x24, USART3 + 0x28
DWT_CYCCNT = 0xE0001004
SCB_CCSIDR = 0xE000ED80
CCSIDR_M7_DCACHE = (127 << 13) | (3 << 3) | 1  # 128 sets, 4 ways, 8 words per line
# MMIO windows: (base, size)
WINDOWS = ((0x40004000, 0x1000), (0x52002000, 0x1000), (0x58000000, 0x30000), (0xE0000000, 0x100000))


class H743:
    """The firmware ELF on a unicorn Cortex-M7 with the register model above."""

    def __init__(self, elf_path: Path, pll_locks: bool = True) -> None:
        self.pll_locks = pll_locks     # False: PLL1RDY never comes (a board whose PLL fails)
        self.rx: deque[int] = deque()  # host -> firmware
        self.tx = bytearray()           # firmware -> host
        self.registers: dict[int, int] = {}
        self.cyccnt = 0
        self.uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        self.uc.ctl_set_cpu_model(UC_CPU_ARM_CORTEX_M7)
        for origin, size in MEMORY.values():
            self.uc.mem_map(origin, size)
        for base, size in WINDOWS:
            self.uc.mmio_map(base, size, self._read, base, self._write, base)
        self.wfi, self.symbols = self._load(elf_path)
        vectors = self.uc.mem_read(MEMORY["flash"][0], 8)
        self.uc.reg_write(UC_ARM_REG_SP, int.from_bytes(vectors[:4], "little"))
        self.pc = int.from_bytes(vectors[4:], "little")

    def _load(self, elf_path: Path) -> tuple[int, dict[str, int]]:
        """Write the loadable segments at their load addresses; the WFI address in bsp_uart_wait."""
        with open(elf_path, "rb") as stream:
            elf = ELFFile(stream)
            for segment in elf.iter_segments():
                if segment["p_type"] == "PT_LOAD" and segment["p_filesz"]:
                    self.uc.mem_write(segment["p_paddr"], segment.data())
            symbols = {symbol.name: symbol for symbol in elf.get_section_by_name(".symtab").iter_symbols()}
        wait = symbols["bsp_uart_wait"]
        start, size = wait["st_value"] & ~1, wait["st_size"]
        code = bytes(self.uc.mem_read(start, size))
        hits = [offset for offset in range(0, size, 2) if code[offset:offset + 2] == WFI]
        if len(hits) != 1:
            raise AssertionError(f"expected one WFI in bsp_uart_wait, found {len(hits)}")
        return start + hits[0], {name: symbol["st_value"] for name, symbol in symbols.items()}

    def run_until_idle(self) -> None:
        """Run until the core waits for input (at the WFI) with nothing left to receive."""
        while True:
            try:
                self.uc.emu_start(self.pc | 1, self.wfi, timeout=RUN_LIMIT_US)
            except UcError as error:
                pc = self.uc.reg_read(UC_ARM_REG_PC)
                raise AssertionError(f"the firmware stopped at pc={pc:#010x}: {error}") from None
            pc = self.uc.reg_read(UC_ARM_REG_PC)
            if pc != self.wfi:
                raise AssertionError(f"the firmware did not reach its idle loop within the time limit (pc={pc:#010x})")
            self.pc = self.wfi + 2  # resume after the WFI, as an interrupt would wake the core
            if not self.rx:
                return

    # -- the register model -------------------------------------------------------------------
    def _read(self, uc: Uc, offset: int, size: int, base: int) -> int:
        address = base + offset
        if address == USART_RDR:
            return self.rx.popleft() if self.rx else 0
        if address == USART_ISR:
            return (1 << 7) | ((1 << 5) if self.rx else 0)  # TXE, RXNE
        if address == DWT_CYCCNT:
            self.cyccnt = (self.cyccnt + CYCCNT_STEP) & 0xFFFFFFFF
            return self.cyccnt
        if address == SCB_CCSIDR:
            return CCSIDR_M7_DCACHE
        value = self.registers.get(address, 0)
        if address == RCC_CR:  # HSIRDY = HSION, PLL1RDY = PLL1ON (unless the PLL is made to fail)
            pll_ready = ((value >> 24) & 1) if self.pll_locks else 0
            value = (value & ~((1 << 2) | (1 << 25))) | ((value & 1) << 2) | (pll_ready << 25)
        elif address == RCC_CFGR:  # SWS = SW
            value = (value & ~(7 << 3)) | ((value & 7) << 3)
        elif address in (PWR_CSR1, PWR_D3CR):  # ACTVOSRDY, VOSRDY
            value |= 1 << 13
        return value

    def _write(self, uc: Uc, offset: int, size: int, value: int, base: int) -> None:
        address = base + offset
        if address == USART_TDR:
            self.tx.append(value & 0xFF)
        elif address == DWT_CYCCNT:
            self.cyccnt = value & 0xFFFFFFFF
        else:
            self.registers[address] = value


class UartPort:
    """The modelled USART3 as the harness.link.protocol Port a Device talks through: writing queues
    bytes for the firmware, reading runs it until it has answered and idles again."""

    def __init__(self, machine: H743) -> None:
        self.machine = machine

    def write(self, data: bytes) -> int:
        self.machine.rx.extend(data)
        return len(data)

    def read(self, size: int = 1) -> bytes:
        if not self.machine.tx:
            self.machine.run_until_idle()
        data = bytes(self.machine.tx[:size])
        del self.machine.tx[:size]
        return data

    @property
    def in_waiting(self) -> int:
        return len(self.machine.tx)

    def close(self) -> None:
        pass
