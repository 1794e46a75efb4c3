"""Board files: the shipped boards load, and every kind of mistake is one clear line."""
import pytest

from harness.backends import backend_names, get_backend, parse_settings
from harness.backends.qemu import QemuSettings
from harness.boards import COUNTER_KINDS, board_names
from harness.backends import load_board, load_boards
from harness.errors import HarnessError
from harness.paths import BOARDS_DIR

QEMU_M7_TEXT = (BOARDS_DIR / "qemu-m7.toml").read_text()


def test_every_shipped_board_loads():
    boards = load_boards()
    assert [board.name for board in boards] == board_names()
    assert "qemu-m7" in board_names()


def test_qemu_m7_is_the_h743_budget_on_mps2_an500():
    board = load_board("qemu-m7")
    assert board.cpu == "cortex-m7"
    assert board.bsp == "mps2-an500"
    assert board.budget.flash == 2 * 1024 * 1024
    assert board.budget.ram == 512 * 1024
    flash, ram, stack = (board.region_named(name) for name in ("FLASH", "RAM", "STACK"))
    assert (flash.kind, flash.origin, flash.size) == ("flash", 0x00000000, 2 * 1024 * 1024)
    assert (ram.kind, ram.origin, ram.size) == ("ram", 0x20000000, 512 * 1024)
    assert stack.reserved and stack.kind == "ram" and stack.size == 128 * 1024
    assert board.counter.protocol_kind == COUNTER_KINDS["virtual-time"] == 1
    assert board.backend == "qemu"
    settings = board.backend_settings
    assert isinstance(settings, QemuSettings)
    assert (settings.machine, settings.cpu, settings.icount_shift) == ("mps2-an500", "cortex-m7", 0)
    assert board.region_at(0x20000010) is ram and board.region_at(0x30000000) is None


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(HarnessError, match=r"unknown board 'nucleo-h7433'.*known boards: .*qemu-m7"):
        load_board("nucleo-h7433")


def write_variant(tmp_path, old, new, name="qemu-m7"):
    """A copy of qemu-m7.toml with `old` replaced by `new`, saved as <name>.toml."""
    assert old in QEMU_M7_TEXT, old
    text = QEMU_M7_TEXT.replace(old, new, 1).replace('name = "qemu-m7"', f'name = "{name}"', 1)
    (tmp_path / f"{name}.toml").write_text(text)
    return tmp_path


@pytest.mark.parametrize("old, new, message", [
    ('cpu = "cortex-m7"', "cpu = [", "not valid TOML"),
    ("core_clock_hz = 25_000_000", "core_clock_hz = -1", "core_clock_hz: must be positive"),
    ("core_clock_hz = 25_000_000", 'core_clock_hz = "fast"', "core_clock_hz: must be an integer"),
    ('size = "2MB"', 'size = "2 parsecs"', "memory.flash.size: unknown unit"),
    ('size = "512kB"', 'size = "-512kB"', "memory.ram.size: not a memory size"),
    ('[budget]\nflash = "2MB"', '[budget]\nflash = "0"', "budget.flash: must not be zero"),
    ('ram = "512kB"\n', "", "budget.ram: missing"),
    ('kind = "flash"', 'kind = "eeprom"', "memory.flash.kind: must be one of flash, ram"),
    ("origin = 0x60000000", "origin = 0x20070000", "memory regions ram and stack overlap"),
    ('kind = "virtual-time"', 'kind = "seconds"', "counter.kind: must be one of"),
    ("bsp = ", "colour = \"blue\"\nbsp = ", "unknown key.*colour"),
    ("reserved = true", "reserved = true\nwritable = true", "unknown key.*memory.stack.writable"),
    ('name = "qemu"', 'name = "jtag-magic"', "unknown backend 'jtag-magic' \\(known: .*qemu"),
    ("icount_shift = 0 ", 'icount_shift = "zero" ', "backend.icount_shift: expected an integer"),
    ("icount_shift = 0 ", "icount_shift = 99 ", "icount_shift must be 0..10"),
    ("extra_args = []", "extra_args = [1]", r"backend.extra_args\[0\]: expected a string"),
    ("extra_args = []", "extra_args = []\nturbo = true", "unknown setting.*turbo"),
    ('machine = "mps2-an500"\n', "", "backend.machine: missing"),
])
def test_bad_board_files_give_one_line_naming_the_field(tmp_path, old, new, message):
    boards_dir = write_variant(tmp_path, old, new, name="broken")
    with pytest.raises(HarnessError, match=message) as caught:
        load_board("broken", boards_dir)
    assert "\n" not in str(caught.value)
    assert "broken.toml" in str(caught.value)


def test_board_name_must_match_file_name(tmp_path):
    (tmp_path / "other.toml").write_text(QEMU_M7_TEXT)
    with pytest.raises(HarnessError, match="must match the file name 'other'"):
        load_board("other", tmp_path)


def test_a_board_file_may_be_given_by_path(tmp_path):
    boards_dir = write_variant(tmp_path, 'description = "', 'description = "copy of ', name="mine")
    board = load_board(str(boards_dir / "mine.toml"))
    assert board.name == "mine" and board.description.startswith("copy of")


def test_backend_registry_knows_qemu_and_names_the_others():
    assert "qemu" in backend_names()
    assert get_backend("qemu").name == "qemu"
    with pytest.raises(HarnessError, match="unknown backend 'renodex'"):
        get_backend("renodex")


def test_parse_settings_converts_and_defaults():
    settings = parse_settings(QemuSettings, {"machine": "m", "cpu": "c", "start_timeout_s": 2,
                                             "extra_args": ["-d", "guest_errors"]}, "here")
    assert settings.start_timeout_s == 2.0 and isinstance(settings.start_timeout_s, float)
    assert settings.extra_args == ("-d", "guest_errors")
    assert settings.icount_shift == 0
    with pytest.raises(HarnessError, match="here.port_attempts: expected an integer, got True"):
        parse_settings(QemuSettings, {"machine": "m", "cpu": "c", "port_attempts": True}, "here")


def test_harness_boards_lists_boards_with_their_tool_status(capsys):
    from harness.cli import main

    assert main(["boards"]) == 0
    output = capsys.readouterr().out
    assert "qemu-m7" in output and "512 kB" in output and "2 MB" in output
    assert "firmware toolchain:" in output


def test_the_nucleo_links_at_its_baud_and_the_firmware_is_built_for_it():
    """boards/nucleo-h743.toml's baud reaches the firmware build (UART_BAUD) and the host's port;
    --baud replaces it on both, the Renode board builds the Nucleo's ELF at the Nucleo's rate."""
    from harness.build.firmware import uart_baud

    nucleo = load_board("nucleo-h743")
    assert nucleo.backend_settings.baud == 7_500_000 and uart_baud(nucleo) == 7_500_000
    assert uart_baud(nucleo.with_baud(921_600)) == 921_600
    assert uart_baud(load_board("renode-h743").firmware_board()) == 7_500_000
    assert uart_baud(load_board("qemu-m7")) is None
    with pytest.raises(HarnessError, match="board qemu-m7 .qemu backend. has no UART baud rate to choose"):
        load_board("qemu-m7").with_baud(115_200)
    with pytest.raises(HarnessError, match="--baud must be 1200 .. 15000000, got 50"):
        nucleo.with_baud(50)
