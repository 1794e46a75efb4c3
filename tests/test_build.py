"""Firmware builds: the make call, the content-hash cache, ELF memory accounting, clear failures.

Most tests drive build_firmware with a stand-in firmware directory (a Makefile with the real
interface, building the tiny firmware of tests/support) so they run whatever state firmware/
is in; test_real_firmware_builds_a_generated_model uses the real firmware/Makefile.
"""
import dataclasses
import re
import shlex
import subprocess

import pytest
from support.tiny_firmware import build_tiny_elf, require_toolchain, write_sources

from harness.build import firmware as build
from harness.backends import load_board, load_boards
from harness.errors import HarnessError
from harness.paths import FIRMWARE_DIR

KIB = 1024
STACK = 128 * KIB


@pytest.fixture(scope="module")
def board():
    return load_board("qemu-m7")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MPQ_HARNESS_CACHE", str(tmp_path / "cache"))


def section_sizes(elf):
    """Section sizes as binutils reports them (an independent reading of the ELF)."""
    require_toolchain()
    output = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True,
                            check=True, timeout=30).stdout
    return {fields[0]: int(fields[1]) for fields in (line.split() for line in output.splitlines())
            if len(fields) == 3 and fields[0].startswith(".")}


def test_memory_accounting_reads_flash_and_ram_from_the_elf(board, tmp_path):
    elf = build_tiny_elf(tmp_path, data_bytes=1000, bss_bytes=3000)
    sizes = section_sizes(elf)
    memory = build.measure_elf(elf, board)
    assert sizes[".data"] == 1000 and sizes[".bss"] == 3000
    # flash: code and constants, plus the load image of .data
    assert memory.flash_bytes == sizes[".text"] + sizes[".data"]
    # RAM: .data + .bss; the stack region is reserved memory outside the RAM budget
    assert memory.reserved_bytes == STACK
    assert memory.ram_bytes == sizes[".data"] + sizes[".bss"]
    by_name = {section.name: section for section in memory.sections}
    assert (by_name[".data"].flash, by_name[".data"].ram) == (1000, 1000)
    assert by_name[".data"].region == "ram" and by_name[".data"].load_address < 2 * 1024 * KIB
    assert (by_name[".bss"].flash, by_name[".bss"].ram) == (0, 3000)
    assert (by_name[".stack"].flash, by_name[".stack"].ram, by_name[".stack"].region) == (0, 0, "stack")
    build.check_budgets(memory, board)  # fits


def test_budget_overflow_names_the_broken_budget(board, tmp_path):
    elf = build_tiny_elf(tmp_path, bss_bytes=400 * KIB)  # links (the region is 512 kB); the stack is outside the budget
    memory = build.measure_elf(elf, board)
    build.check_budgets(memory, board)
    board = dataclasses.replace(board, budget=dataclasses.replace(board.budget, ram=256 * KIB))
    with pytest.raises(HarnessError, match=r"does not fit board qemu-m7: ram .* exceeds the ram budget 256 kB by \d+ bytes"):
        build.check_budgets(memory, board)
    small_flash = dataclasses.replace(board, budget=dataclasses.replace(board.budget, flash=64))
    with pytest.raises(HarnessError, match="flash .* exceeds the flash budget 64 B.*ram .* exceeds the ram budget"):
        build.check_budgets(memory, small_flash)


def test_a_section_outside_the_boards_regions_is_an_error(board, tmp_path):
    elf = build_tiny_elf(tmp_path)
    without_stack = dataclasses.replace(board, memory=tuple(r for r in board.memory if r.name != "stack"))
    with pytest.raises(HarnessError, match=r"section \.stack at 0x60000000 lies outside the memory regions"):
        build.measure_elf(elf, without_stack)


@pytest.mark.parametrize("flash_bytes, bss_bytes, budget", [(64, 256, "flash budget (2 MB)"),
                                                             (2 * 1024 * KIB, 600 * KIB, "ram budget (512 kB)")])
def test_linker_overflow_becomes_one_line_naming_the_budget(board, tmp_path, flash_bytes, bss_bytes, budget):
    with pytest.raises(subprocess.CalledProcessError) as failed:
        build_tiny_elf(tmp_path, bss_bytes=bss_bytes, flash_bytes=flash_bytes)
    message = build.explain_build_failure(failed.value.stderr, board)
    region = "FLASH" if "flash" in budget else "RAM"
    assert message.startswith(f"firmware does not fit the board's {budget}: region {region} overflowed by ")
    assert "\n" not in message


def test_compiler_errors_are_kept_in_one_line(board):
    log = ("arm-none-eabi-gcc -c model.c -o model.o\n"
           "model.c:12:5: error: expected ';' before '}' token\n"
           "make: *** [Makefile:40: out/model.o] Error 1\n")
    assert build.explain_build_failure(log, board) == \
        "firmware build failed: model.c:12:5: error: expected ';' before '}' token"
    log = "ld: bsp.o: in function `f':\nbsp.c:(.text+0x8): undefined reference to `g'\ncollect2: error: ld returned 1 exit status\n"
    assert "undefined reference to `g'" in build.explain_build_failure(log, board)


@pytest.fixture
def fake_firmware(tmp_path):
    """A firmware dir whose Makefile has the real interface (BOARD, GEN, OUT) and builds tiny.c."""
    require_toolchain()
    firmware = tmp_path / "firmware"
    firmware.mkdir()
    compile_and_link = shlex.join(write_sources(firmware)) + " $(OUT)/firmware.elf -I$(GEN) $(EXTRA_CFLAGS)"
    # the recipe also checks that nothing unhashed (an environment variable) reaches make
    (firmware / "Makefile").write_text(f'all:\n\ttest "$(BOARD)" = qemu-m7\n\ttest -z "$(OPT)"\n\t{compile_and_link}\n')
    gen = tmp_path / "gen"
    gen.mkdir()
    (gen / "sizes.h").write_text("#ifndef DATA_BYTES\n#define DATA_BYTES 64\n#endif\n#define BSS_BYTES 256\n")
    return firmware, gen


@pytest.fixture
def make_runs(monkeypatch):
    """Counts the make runs of build_firmware."""
    runs = []
    real_run_logged = build.run_logged

    def counting(command, log_path, timeout_s, env):
        runs.append(command)
        return real_run_logged(command, log_path, timeout_s, env)

    monkeypatch.setattr(build, "run_logged", counting)
    return runs


def test_build_runs_make_once_and_then_hits_the_cache(board, fake_firmware, make_runs, tmp_path, monkeypatch):
    firmware, gen = fake_firmware
    monkeypatch.setenv("OPT", "-O0")  # not an input of the build: make must not see it
    first = build.build_firmware(board, gen, firmware_dir=firmware)
    assert not first.cached and len(make_runs) == 1
    assert make_runs[0][:3] == ["make", "-C", str(firmware)]
    assert {"BOARD=qemu-m7", f"GEN={gen}"} <= set(make_runs[0])
    assert first.elf_path == tmp_path / "cache" / "builds" / first.key / "firmware.elf"
    assert first.elf_path.is_file()
    assert first.ram_bytes == 64 + 256 and first.flash_bytes > 64

    again = build.build_firmware(board, gen, firmware_dir=firmware)
    assert again.cached and len(make_runs) == 1
    assert (again.key, again.elf_path, again.memory) == (first.key, first.elf_path, first.memory)

    bigger = build.build_firmware(board, gen, firmware_dir=firmware, make_vars={"EXTRA_CFLAGS": "-DDATA_BYTES=96"})
    assert "EXTRA_CFLAGS=-DDATA_BYTES=96" in make_runs[1] and bigger.key != first.key
    assert bigger.ram_bytes == 96 + 256


def test_the_cache_key_follows_every_input(board, fake_firmware, make_runs, tmp_path):
    firmware, gen = fake_firmware
    keys = [build.build_key(board, gen, firmware)]
    (gen / "sizes.h").write_text("#define DATA_BYTES 128\n#define BSS_BYTES 256\n")  # generated sources
    keys.append(build.build_key(board, gen, firmware))
    (firmware / "tiny.c").write_text((firmware / "tiny.c").read_text() + "\n/* edited */\n")  # firmware
    keys.append(build.build_key(board, gen, firmware))
    (firmware / "extra").mkdir()
    (firmware / "extra" / "new.h").write_text("")  # a new file anywhere under firmware/
    keys.append(build.build_key(board, gen, firmware))
    other_board_file = tmp_path / "qemu-m7.toml"
    other_board_file.write_text(board.path.read_text() + "\n# edited\n")
    keys.append(build.build_key(dataclasses.replace(board, path=other_board_file), gen, firmware))
    keys.append(build.build_key(board, gen, firmware, {"EXTRA_CFLAGS": "-DX=1"}))  # make variables
    assert len(set(keys)) == len(keys)
    # build outputs left in firmware/ and the gen dir's location do not matter
    (firmware / "build").mkdir()
    (firmware / "build" / "stale.o").write_bytes(b"\0")
    (firmware / "tiny.o").write_bytes(b"\0")
    moved = tmp_path / "gen-copy"
    moved.mkdir()
    (moved / "sizes.h").write_text((gen / "sizes.h").read_text())
    assert build.build_key(board, moved, firmware) == keys[3]
    assert make_runs == []


def test_a_failed_build_keeps_its_log_and_says_why(board, fake_firmware, make_runs):
    firmware, gen = fake_firmware
    (gen / "sizes.h").write_text("#define DATA_BYTES 64\n#define BSS_BYTES (600 * 1024)\n")
    with pytest.raises(HarnessError, match=r"ram budget \(512 kB\): region RAM overflowed by \d+ bytes \(log: (.*)\)") as caught:
        build.build_firmware(board, gen, firmware_dir=firmware)
    log = str(caught.value).rsplit("(log: ", 1)[1].rstrip(")")
    assert "overflowed" in open(log).read()
    key = build.build_key(board, gen, firmware)
    assert not (build.cache_dir("builds") / key).exists()  # nothing half-built is cached
    assert [p.name for p in build.cache_dir("builds").iterdir() if p.name.startswith(".")] == []


def test_over_budget_build_is_refused_unless_asked(board, fake_firmware):
    firmware, gen = fake_firmware
    (gen / "sizes.h").write_text("#define DATA_BYTES 64\n#define BSS_BYTES (400 * 1024)\n")
    board = dataclasses.replace(board, budget=dataclasses.replace(board.budget, ram=256 * 1024))
    with pytest.raises(HarnessError, match="exceeds the ram budget"):
        build.build_firmware(board, gen, firmware_dir=firmware)
    result = build.build_firmware(board, gen, firmware_dir=firmware, check_budget=False)
    assert result.cached and result.ram_bytes > board.budget.ram


def test_missing_toolchain_says_how_to_install(board, fake_firmware, monkeypatch, tmp_path):
    firmware, gen = fake_firmware
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    build.toolchain_version.cache_clear()
    try:
        with pytest.raises(HarnessError, match="arm-none-eabi-gcc not found; install it with: sudo apt-get install gcc-arm-none-eabi"):
            build.build_firmware(board, gen, firmware_dir=firmware)
        assert not build.toolchain_status().present
    finally:
        build.toolchain_version.cache_clear()


def test_missing_generated_sources_is_clear(board, tmp_path):
    with pytest.raises(HarnessError, match="no generated sources"):
        build.build_firmware(board, tmp_path / "nowhere")


def test_real_firmware_builds_a_generated_model(board, tmp_path, make_runs):
    require_toolchain()
    from harness.build.codegen import generate
    from harness.ir.random_graphs import random_layer_graph

    sources = generate([random_layer_graph("conv2d", 8, 4, 8, seed=1)], tmp_path / "gen")
    result = build.build_firmware(board, tmp_path / "gen")
    assert not result.cached and result.elf_path.is_file()
    assert result.flash_bytes > sources.const_bytes
    assert result.ram_bytes >= sources.arena_bytes
    assert build.build_firmware(board, tmp_path / "gen").cached and len(make_runs) == 1


def test_makefile_board_table_agrees_with_the_board_files():
    """make maps BOARD to its BSP and counter kind itself; both must say what boards/*.toml say.
    A board running another board's ELF (renode-h743) has no entry: it is never built."""
    makefile = (FIRMWARE_DIR / "Makefile").read_text()
    table = dict(re.findall(r"^((?:BSP|COUNTER_KIND)\.[\w.-]+)\s*:=\s*(\S+)", makefile, re.MULTILINE))
    for board in load_boards():
        if board.firmware_board() is not board:
            assert f"BSP.{board.name}" not in table, f"firmware/Makefile: {board.name} runs {board.firmware}'s ELF"
            continue
        assert table.get(f"BSP.{board.name}") == board.bsp, f"firmware/Makefile: BSP.{board.name}"
        assert table.get(f"COUNTER_KIND.{board.name}") == str(board.counter.protocol_kind), \
            f"firmware/Makefile: COUNTER_KIND.{board.name}"
