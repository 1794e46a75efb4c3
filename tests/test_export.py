"""`harness export`: the library builds into a user's firmware for both Cortex-M7 boards with
its Makefile fragment (and its CMake file where cmake is installed), and, run in QEMU, gives the
output `harness measure` checks for the same input."""
import json
import shutil
import subprocess

import numpy as np
import pytest

from harness.backends import load_board, open_link
from harness.build.firmware import toolchain_status
from harness.cli import main
from harness.paths import FIRMWARE_DIR, POLICIES_DIR

if not toolchain_status().present:
    pytest.skip(f"needs the ARM toolchain: {toolchain_status().detail}", allow_module_level=True)

POLICY = POLICIES_DIR / "digits-mixed.json"
ARCH = "-mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-d16"
# A user's trivial firmware: the board's own start-up and UART (here the harness's BSPs), the
# exported model, one input; prints "OUT <status> <output bytes in hex>".
MAIN_C = r"""
#include "bsp.h"
#include "mpq_model_api.h"
#include "input.h"

static uint8_t output[MPQ_MODEL_OUT_BYTES];

void bsp_on_fault(const bsp_fault_t *fault) {
    (void)fault;
    for (;;) {
    }
}

static void put(const char *text) {
    while (*text) {
        bsp_uart_write((uint8_t)*text++);
    }
}

int main(void) {
    static const char hex[] = "0123456789abcdef";
    bsp_init();
    int status = mpq_model_run(test_input, output);
    put(status == 0 ? "OUT 0 " : "OUT failed ");
    for (uint32_t i = 0; i < MPQ_MODEL_OUT_BYTES; ++i) {
        bsp_uart_write((uint8_t)hex[output[i] >> 4]);
        bsp_uart_write((uint8_t)hex[output[i] & 15]);
    }
    put("\n");
    for (;;) {
        bsp_uart_wait();
    }
}
"""
USER_MAKEFILE = """include $(MPQ_MODEL_DIR)/mpq_model.mk
BSP_SRC := $(wildcard $(BSP_DIR)/*.c) $(wildcard $(CORE_DIR)/*.c)
CFLAGS := $(MPQ_MODEL_CFLAGS) -O2 $(addprefix -I,$(MPQ_MODEL_INC)) -I$(FIRMWARE)/bsp -I$(BSP_DIR) -I$(CORE_DIR) -I. \\
          '-DBSP_BOARD_NAME="user"' $(BOARD_CFLAGS)
firmware.elf: main.c $(MPQ_MODEL_SRC) $(BSP_SRC)
\t{cc} $(CFLAGS) -nostartfiles --specs=nano.specs --specs=nosys.specs -Wl,--gc-sections -Wl,--no-warn-rwx-segments \\
\t  -T$(wildcard $(BSP_DIR)/*.ld) $^ -o $@
"""
TARGETS = {"nucleo-h743": ("stm32h7", "-DSTM32H7_SYSCLK_MHZ=480"), "qemu-m7": ("mps2-an500", "")}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(graph, export directory, input image, measured-input label) for the mixed digits policy."""
    from harness.datasets.measured import measured_inputs
    from harness.policy import load_policy
    from harness.quantize.pipeline import graph_for_policy

    out = tmp_path_factory.mktemp("export") / "digits"
    assert main(["export", str(POLICY), "--board", "nucleo-h743", "--out", str(out)]) == 0
    policy = load_policy(POLICY)
    graph = graph_for_policy(policy)
    inputs, labels = measured_inputs(policy, graph, 1)
    return policy, graph, out, inputs[0]


def _user_firmware(exported, board_name, directory):
    from harness.link.device import pack_tensor

    _, graph, out, image = exported
    packed = pack_tensor(image, graph.tensors[graph.input])
    directory.mkdir()
    (directory / "main.c").write_text(MAIN_C)
    (directory / "input.h").write_text("#include <stdint.h>\nstatic const uint8_t test_input[] = {"
                                       + ", ".join(str(b) for b in packed) + "};\n")
    (directory / "Makefile").write_text(USER_MAKEFILE.format(cc="arm-none-eabi-gcc"))
    bsp, board_cflags = TARGETS[board_name]
    result = subprocess.run(["make", "-s", f"MPQ_MODEL_DIR={out}", f"FIRMWARE={FIRMWARE_DIR}",
                             f"BSP_DIR={FIRMWARE_DIR / 'bsp' / bsp}", f"CORE_DIR={FIRMWARE_DIR / 'bsp' / 'cortex-m7'}",
                             f"BOARD_CFLAGS={board_cflags}"], cwd=directory, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return directory / "firmware.elf"


def test_the_export_is_self_contained_and_documented(exported):
    _, graph, out, _ = exported
    readme = (out / "README.md").read_text()
    assert "mpq_model_run" in readme and "activation arena" in readme
    assert all(path.suffix in (".c", ".h") for path in (out / "src").iterdir())
    sources = " ".join(path.read_text() for path in (out / "src").glob("*.c"))
    assert "mpq_protocol" not in sources and "bsp.h" not in sources  # no runtime, no board support
    header = (out / "include" / "mpq_model_api.h").read_text()
    assert f"#define MPQ_MODEL_IN_BYTES {graph.tensors[graph.input].nbytes}u" in header
    assert f'#define MPQ_MODEL_HASH "{graph.hash()}"' in header


@pytest.mark.parametrize("board_name", list(TARGETS))
def test_the_export_links_into_a_trivial_main(exported, board_name, tmp_path):
    from elftools.elf.elffile import ELFFile

    elf = _user_firmware(exported, board_name, tmp_path / board_name)
    board = load_board(board_name)
    with open(elf, "rb") as stream:
        symbols = {symbol.name for symbol in ELFFile(stream).get_section_by_name(".symtab").iter_symbols()}
        entry = ELFFile(stream).header["e_entry"]
    assert {"mpq_model_run", "main"} <= symbols and board.region_at(entry) is not None


def test_the_export_builds_with_its_cmake_file(exported, tmp_path):
    if shutil.which("cmake") is None:
        pytest.skip("cmake not installed")
    _, _, out, _ = exported
    toolchain = tmp_path / "arm.cmake"
    toolchain.write_text("set(CMAKE_SYSTEM_NAME Generic)\nset(CMAKE_SYSTEM_PROCESSOR arm)\n"
                         "set(CMAKE_C_COMPILER arm-none-eabi-gcc)\nset(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)\n")
    build = tmp_path / "build"
    for command in (["cmake", "-S", str(out), "-B", str(build), f"-DCMAKE_TOOLCHAIN_FILE={toolchain}"],
                    ["cmake", "--build", str(build)]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert (build / "libmpq_model.a").is_file()


def test_the_export_in_qemu_gives_the_output_measure_checks(exported, tmp_path):
    import serial

    from harness.backends import get_backend
    from harness.ir import reference
    from harness.link.device import unpack_tensor
    from harness.measure.log import RunLog
    from harness.measure.run import measure

    board = load_board("qemu-m7")
    status = get_backend(board.backend).tool_status()
    if not status.present:
        pytest.skip(f"board qemu-m7: {status.detail}")
    policy, graph, _, image = exported
    elf = _user_firmware(exported, "qemu-m7", tmp_path / "user")
    with open_link(board, elf) as link:
        port = serial.serial_for_url(link.url, timeout=0.2)
        text = b""
        for _ in range(300):  # up to a minute
            text += port.read(4096)
            if b"\n" in text:
                break
        port.close()
    line = text.decode(errors="replace").strip().splitlines()[-1]
    assert line.startswith("OUT 0 "), text[-200:]
    exported_output = unpack_tensor(bytes.fromhex(line.split()[2]), graph.tensors[graph.output])
    log_path = tmp_path / "measure.jsonl"
    with RunLog(log_path) as log:
        report = measure(policy, graph, board, image[None], np.array([-1]), log)
    (measured,) = [json.loads(row) for row in log_path.read_text().splitlines() if json.loads(row)["event"] == "image"]
    assert report["bit_exact"] == 1  # measure: the harness firmware's output equals the host reference
    assert np.array_equal(exported_output, reference.predict(graph, image))
    assert int(exported_output.argmax()) == measured["device_class"]
