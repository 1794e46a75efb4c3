"""Generated model.c: compiles for host and Cortex-M7 without warnings, keeps weights in flash and
the arena out of it, is deterministic, and — linked with the portable kernels and a host driver
(tests/support/host_model_driver.c) — matches harness.ir.reference bit-exactly on every output."""
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

from harness import __version__
from harness.build.codegen import generate, model_hash
from harness.errors import HarnessError
from harness.ir.graph import Graph, Tensor
from harness.ir.packing import BITS, pack, unpack
from harness.ir.reference import predict
from harness.ir.random_graphs import BIT_COMBOS, KERNEL_OPS, random_chain_graph, random_input, random_layer_graph
from harness.pytest_plugin import require_tools

ROOT = Path(__file__).resolve().parent.parent
INCLUDES = ["-I", str(ROOT / "firmware/kernels/include"), "-I", str(ROOT / "firmware/runtime")]
STRICT = ["-O2", "-std=c11", "-Wall", "-Wextra", "-Werror"]
ARM_GCC = ["arm-none-eabi-gcc", "-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16"]
KERNEL_SOURCES = sorted((ROOT / "firmware/kernels/src").glob("*.c"))
DRIVER = ROOT / "tests/support/host_model_driver.c"
COMPILE_TIMEOUT = 180


def all_test_graphs() -> list[Graph]:
    """Every kernel op at every bit combination, a few with int32 logits, pooling at every
    (in, out) bits, and chains."""
    singles = [random_layer_graph(op, *combo, seed=100 * i + j)
               for i, op in enumerate(KERNEL_OPS) for j, combo in enumerate(BIT_COMBOS)]
    logits = [random_layer_graph(op, i, w, 32, seed=7 * i + w)
              for op in KERNEL_OPS for i, w in ((2, 2), (4, 8), (8, 4))]
    pools = [random_layer_graph("global_avg_pool", i, None, o, seed=10 * i + o) for i in BITS for o in BITS]
    chains = [random_chain_graph(seed, blocks=1 + seed % 5) for seed in range(12)]
    return singles + logits + pools + chains


def run_tool(cmd: list[str], timeout: float = COMPILE_TIMEOUT) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        pytest.fail(f"{Path(cmd[0]).name} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result


@pytest.fixture(scope="module")
def graphs() -> list[Graph]:
    return all_test_graphs()


@pytest.fixture(scope="module")
def image(graphs, tmp_path_factory) -> Path:
    """model.c holding every test graph (one firmware image of many models)."""
    out = tmp_path_factory.mktemp("image")
    generate(graphs, out, policy_hash="0123456789abcdef")
    return out / "model.c"


@pytest.mark.tools("cc")
def test_compiles_for_host(image):
    run_tool(["cc", *STRICT, *INCLUDES, "-c", image, "-o", image.with_suffix(".host.o")])


needs_arm_gcc = pytest.mark.tools("arm-none-eabi-gcc")


@needs_arm_gcc
def test_compiles_for_cortex_m7_with_constants_in_flash_and_arena_in_bss(image):
    obj = image.with_suffix(".arm.o")
    run_tool([*ARM_GCC, *STRICT, *INCLUDES, "-c", image, "-o", obj])
    with obj.open("rb") as f:
        elf = ELFFile(f)
        symbols = {s.name: s for s in elf.get_section_by_name(".symtab").iter_symbols()}
        constants = [name for name in symbols if re.fullmatch(r"m\d+_l\d+_(weights|bias|mult|shift)", name)]
        assert len(constants) > 4 * len(KERNEL_OPS) * len(BIT_COMBOS)
        for name in constants:
            section = elf.get_section(symbols[name]["st_shndx"])
            assert section.name.startswith(".rodata") and not section["sh_flags"] & SH_FLAGS.SHF_WRITE, name
        arena = elf.get_section(symbols["mpq_arena"]["st_shndx"])
        assert arena.name == ".bss.arena" and arena["sh_type"] == "SHT_NOBITS"
        assert arena["sh_addralign"] >= 8


@needs_arm_gcc
def test_single_graph_image_compiles_for_cortex_m7(tmp_path):
    sources = generate([random_chain_graph(42, blocks=4)], tmp_path)
    run_tool([*ARM_GCC, *STRICT, *INCLUDES, "-c", sources.model_c, "-o", tmp_path / "model.o"])


@pytest.fixture(scope="module")
def host_driver(image) -> Path:
    require_tools("cc")
    assert KERNEL_SOURCES, "no portable kernels found in firmware/kernels/src"
    exe = image.with_name("host_model_driver")
    run_tool(["cc", *STRICT, *INCLUDES, image, *KERNEL_SOURCES, DRIVER, "-o", exe])
    return exe


def run_on_host(driver: Path, index: int, graph: Graph, x: np.ndarray, work: Path) -> np.ndarray:
    """Pack x, run model `index` in the host driver, unpack its output."""
    inp, out = graph.tensors[graph.input], graph.tensors[graph.output]
    (work / "in.bin").write_bytes(pack(x, inp.bits, signed=False).tobytes())
    run_tool([driver, "run", str(index), work / "in.bin", work / "out.bin"], timeout=30)
    raw = np.frombuffer((work / "out.bin").read_bytes(), dtype=np.uint8)
    if out.bits == 32:
        return raw.view("<i4").reshape(out.shape)
    return unpack(raw.reshape(out.shape[0], out.shape[1], -1), out.bits, out.channels, signed=False)


def test_every_model_matches_the_reference_bit_exactly(graphs, host_driver, tmp_path):
    mismatches = []
    for index, graph in enumerate(graphs):
        for seed in (1, 2):
            x = random_input(graph, seed)
            got, want = run_on_host(host_driver, index, graph, x, tmp_path), predict(graph, x)
            if not np.array_equal(got, want):
                mismatches.append(f"{graph.name} (input seed {seed}): {np.count_nonzero(got != want)} values differ")
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("corrupt", ["shift", "mult"])
def test_a_layer_with_bad_arguments_fails_the_model_s_check(tmp_path, corrupt):
    """The model's check() passes every layer's calls to mpq_<op>_check: a bad shift or multiplier
    in a later layer (the last one requantizing) makes it return MPQ_ERR_ARG."""
    require_tools("cc")
    graph = random_chain_graph(3, blocks=3)
    model_c = generate([graph], tmp_path).model_c
    last = max(k for k, layer in enumerate(graph.layers)
               if graph.tensors[layer.output].bits != 32 and layer.op != "add")
    assert last > 0
    source, n = re.subn(rf"(static const int\d+_t m0_l{last}_{corrupt}\[\d+\] = {{\n    )(-?\d+)",
                        lambda m: m.group(1) + ("0" if corrupt == "shift" else "-1"), model_c.read_text())
    assert n == 1, f"no {corrupt} array for layer {last} in the generated source"
    model_c.write_text(source)
    exe = tmp_path / "driver"
    run_tool(["cc", *STRICT, *INCLUDES, model_c, *KERNEL_SOURCES, DRIVER, "-o", exe])
    inp = graph.tensors[graph.input]
    (tmp_path / "in.bin").write_bytes(pack(random_input(graph, 1), inp.bits, signed=False).tobytes())
    result = subprocess.run([exe, "run", "0", tmp_path / "in.bin", tmp_path / "out.bin"], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2 and "check() failed with status -1" in result.stderr, result.stderr


def test_image_globals(graphs, host_driver):
    count, digest, arena, policy = run_tool([host_driver, "info"], timeout=30).stdout.split()
    assert (int(count), digest, policy) == (len(graphs), model_hash(graphs), "0123456789abcdef")
    assert int(arena) % 8 == 0 and int(arena) > 0


def test_model_hash_of_one_graph_is_its_own_and_several_are_ordered():
    a, b = random_chain_graph(1), random_chain_graph(2)
    assert model_hash([a]) == a.hash()
    assert model_hash([a, b]) != model_hash([b, a])
    assert len(model_hash([a, b])) == 16


def test_generation_is_deterministic_and_stamped(tmp_path):
    graph = random_chain_graph(7, blocks=3)
    first = generate([graph], tmp_path / "a", policy_hash="feedbeef").model_c.read_bytes()
    graph.save(tmp_path / "graph")
    again = generate([Graph.load(tmp_path / "graph")], tmp_path / "b", policy_hash="feedbeef").model_c.read_bytes()
    assert first == again
    stamp = first.decode().split("*/")[0]
    for fact in ("feedbeef", graph.hash(), __version__, "harness.build.codegen"):
        assert fact in stamp


def test_dims_beyond_uint16_are_refused(tmp_path):
    graph = random_layer_graph("global_avg_pool", 8, None, 8, seed=0)
    graph.tensors["x"] = Tensor("x", (1, 70000, graph.tensors["x"].channels), 8, 1.0)
    with pytest.raises(HarnessError, match="exceed 65535"):
        generate([graph], tmp_path)
