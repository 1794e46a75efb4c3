"""The nucleo-h743 firmware, checked as far as this machine allows (no board, no Renode here):

- the exact ELF `harness measure --board nucleo-h743` would flash boots in the unicorn CPU
  emulator (tests/h743_boot: a register model of what the BSP touches), sends its hello, answers
  INFO and returns a RUN output bit-exact with the host reference;
- its sections land in the STM32H743 regions of the board table (flash, AXI SRAM, DTCM);
- both shipped policies build for it within the board's budgets (CI builds them here).
"""
import numpy as np
import pytest
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

from harness.ir import reference
from harness.backends import load_board
from harness.datasets.registry import integer_test_set
from harness.link.device import pack_tensor, unpack_tensor
from harness.paths import POLICIES_DIR
from harness.policy import load_policy
from harness.link.protocol import HELLO, Command, CounterKind, Device, DeviceInfo, FrameDecoder, encode_frame
from harness.pytest_plugin import require_tools

pytestmark = pytest.mark.tools("arm-none-eabi-gcc", "make")

BOARD = "nucleo-h743"
POLICIES = ("digits-mixed", "digits-int8")


def _policy_build(name: str, board: str = BOARD):
    from harness.measure.run import build_policy_firmware
    from harness.quantize.pipeline import graph_for_policy

    policy = load_policy(POLICIES_DIR / f"{name}.json")
    graph = graph_for_policy(policy)
    return policy, graph, build_policy_firmware(graph, policy, load_board(board))


@pytest.fixture(scope="module")
def mixed():
    """(policy, graph, build) of the digits mixed policy for nucleo-h743."""
    return _policy_build("digits-mixed")


@pytest.fixture(scope="module")
def booted(mixed):
    """The mixed-policy ELF in unicorn, run until it idles after boot."""
    machine = _h743(mixed[2].elf_path)
    machine.run_until_idle()
    return machine


def _h743(*args, **kwargs):
    """The unicorn model of the board (skipped, or failed in strict mode, without unicorn)."""
    require_tools("unicorn")
    from h743_boot.machine import H743  # imports unicorn

    return H743(*args, **kwargs)


NUCLEO_BAUD = load_board("nucleo-h743").backend_settings.baud  # the firmware is built for it


def _frames(data: bytes) -> list:
    return FrameDecoder().feed(data)


def test_boots_and_says_hello(mixed, booted):
    _, graph, _ = mixed
    (hello,) = _frames(bytes(booted.tx))
    booted.tx.clear()
    assert hello.type == HELLO
    assert hello.payload.rstrip(b"\0").decode() == graph.hash()
    # the BSP brought the clock up: PLL1 on and selected, flash latency for 480 MHz, USART3 at the board file's baud
    assert booted.registers[0x58024400] & (1 << 24), "PLL1ON"
    assert booted.registers[0x58024410] & 7 == 3, "sys_ck = pll1_p_ck"
    assert booted.registers[0x52002000] & 0xF == 4, "4 flash wait states"
    assert booted.registers[0x4000480C] == round(120e6 / NUCLEO_BAUD), "USART3 BRR"
    assert booted.registers[0xE0001FB0] == 0xC5ACCE55, "DWT unlocked"


def test_a_pll_that_does_not_lock_says_so_at_the_hsi_baud_rate(mixed):
    """No garbage at a wrong baud rate: USART3 is set up for the 64 MHz HSI, and the hello carries
    the reason, which the host turns into one line instead of measuring."""
    from harness.link.protocol import BootProblem, _hello_hash

    _, graph, _ = mixed
    machine = _h743(mixed[2].elf_path, pll_locks=False)
    machine.run_until_idle()
    assert machine.registers[0x4000480C] == round(64e6 / NUCLEO_BAUD), "USART3 BRR from the HSI"
    assert machine.registers.get(0x58024410, 0) & 7 == 0, "sys_ck stays on the HSI"
    (hello,) = _frames(bytes(machine.tx))
    assert hello.type == HELLO and hello.payload.decode().startswith(graph.hash() + " PLL1 did not lock")
    with pytest.raises(BootProblem, match="reports at boot: PLL1 did not lock: the core runs on the 64 MHz HSI"):
        _hello_hash(hello.payload, "unicorn nucleo-h743")


def test_the_revision_y_build_runs_at_400_mhz():
    """nucleo-h743-revy (the board a revision Y part is sent to): VOS1 without overdrive, 2 flash
    wait states, USART3 from a 100 MHz APB1, and INFO says 400 MHz."""
    _, graph, build = _policy_build("digits-mixed", "nucleo-h743-revy")
    machine = _h743(build.elf_path)
    machine.run_until_idle()
    (hello,) = _frames(bytes(machine.tx))
    assert hello.type == HELLO and hello.payload.rstrip(b"\0").decode() == graph.hash()
    assert machine.registers[0x52002000] & 0xF == 2, "2 flash wait states"
    assert machine.registers[0x4000480C] == round(100e6 / 115200), "USART3 BRR"
    assert not machine.registers.get(0x5800042C, 0) & 1, "no overdrive (SYSCFG_PWRCR.ODEN)"
    machine.tx.clear()
    from h743_boot.machine import UartPort

    with Device(UartPort(machine), "unicorn nucleo-h743-revy", timeout=30.0) as device:
        assert device.info().core_hz == 400_000_000


def test_answers_info(mixed, booted):
    _, graph, _ = mixed
    booted.rx.extend(encode_frame(Command.INFO, 1))
    booted.run_until_idle()
    (answer,) = _frames(bytes(booted.tx))
    booted.tx.clear()
    assert answer.seq == 1
    info = DeviceInfo.parse(answer.payload)
    assert (info.board, info.model_hash, info.n_models) == (BOARD, graph.hash(), 1)
    assert info.counter_kind == CounterKind.CORE_CYCLES
    assert info.core_hz == info.counter_hz == 480_000_000


def test_run_is_bit_exact(mixed, booted):
    from h743_boot.machine import UartPort

    policy, graph, _ = mixed
    _, inputs, _ = integer_test_set(policy)
    with Device(UartPort(booted), "unicorn nucleo-h743", timeout=30.0, run_timeout=120.0) as device:
        device.require_model_hash(graph.hash())
        device.load(0, pack_tensor(inputs[0], graph.tensors[graph.input]))
        run = device.run(0)
        assert run.ok, f"firmware status {run.status}"
        got = unpack_tensor(device.read_output(0), graph.tensors[graph.output])
    expected = reference.predict(graph, inputs[0])
    assert np.array_equal(got, expected)
    assert run.total_ticks > 0 and len(run.layer_ticks) == len(graph.layers)


def test_sections_land_in_the_h743_regions(mixed):
    _, _, build = mixed
    board = load_board(BOARD)
    flash, axi, dtcm = (board.region_named(name) for name in ("flash", "axi_sram", "dtcm"))
    with open(build.elf_path, "rb") as stream:
        elf = ELFFile(stream)
        sections = {s.name: s for s in elf.iter_sections() if s["sh_flags"] & SH_FLAGS.SHF_ALLOC and s["sh_size"]}
        symbols = {s.name: s["st_value"] for s in elf.get_section_by_name(".symtab").iter_symbols()}
    for name in (".isr_vector", ".text", ".rodata"):  # code and weights (const arrays) in flash
        assert flash.contains(sections[name]["sh_addr"]), name
        assert flash.contains(sections[name]["sh_addr"] + sections[name]["sh_size"] - 1), name
    assert sections[".isr_vector"]["sh_addr"] == flash.origin, "the vector table opens the flash"
    assert axi.contains(sections[".bss"]["sh_addr"])
    assert axi.contains(sections[".bss"]["sh_addr"] + sections[".bss"]["sh_size"] - 1)
    arena = next(address for name, address in symbols.items() if "arena" in name.lower())
    assert axi.contains(arena), "the activation arena is in AXI SRAM"
    assert symbols["__stack_top__"] == dtcm.origin + dtcm.size and dtcm.contains(symbols["__stack_base__"])
    with open(build.elf_path, "rb") as stream:
        weights = [s for s in ELFFile(stream).get_section_by_name(".symtab").iter_symbols()
                   if s["st_info"]["type"] == "STT_OBJECT" and "weight" in s.name.lower()]
    assert weights and all(flash.contains(s["st_value"]) for s in weights), "weights in flash"


@pytest.mark.parametrize("name", POLICIES)
def test_shipped_policies_fit_the_board_budgets(name):
    _, _, build = _policy_build(name)
    board = load_board(BOARD)
    assert 0 < build.flash_bytes <= board.budget.flash
    assert 0 < build.ram_bytes <= board.budget.ram
    assert build.memory.reserved_bytes == 128 * 1024  # the stack has the DTCM to itself


def test_renode_board_gets_the_very_same_elf(mixed):
    from harness.measure.run import build_policy_firmware

    policy, graph, build = mixed
    in_renode = build_policy_firmware(graph, policy, load_board("renode-h743"))
    assert in_renode.cached and in_renode.elf_path == build.elf_path
