"""Bad MLPerf Tiny options are refused in one line before anything is built; the generated
config's tables follow the sample-image quantization; the ELF says which front end it speaks."""
import numpy as np
import pytest

from harness.build.mlperf_config import MlperfConfig, byte_table, model_id_for, pixel_table, quantize_loaded
from harness.cli import main
from harness.datasets.registry import quantize_real, real_images
from harness.errors import HarnessError
from harness.ir.graph import Graph, Tensor
from harness.link.mlperf import format_score
from harness.paths import POLICIES_DIR
from harness.policy import InputQuantization

POLICY = str(POLICIES_DIR / "resnet8-tflite-mixed.json")


@pytest.mark.parametrize("argv, message", [
    (["build", POLICY, "--model-id", "ic01"], "error: --model-id needs --protocol mlperf-tiny"),
    (["measure", POLICY, "--protocol", "mlperf-tiny", "--resume", "x.jsonl"],
     "error: --protocol mlperf-tiny does not take --resume"),
    (["measure", POLICY, "--protocol", "mlperf-tiny", "--infer", "0", "1"],
     "error: --infer N W: N must be at least 1 and W at least 0, got 0 1"),
])
def test_bad_options_are_one_line_errors(argv, message, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == message


def _graph(shape) -> Graph:
    graph = Graph.__new__(Graph)
    graph.tensors = {"x": Tensor("x", shape, 8, 1.0)}
    graph.input = "x"
    return graph


def test_model_id_from_shape_and_checked():
    assert model_id_for(_graph((32, 32, 3))) == "ic01"
    assert model_id_for(_graph((49, 10, 1))) == "kws01"
    assert model_id_for(_graph((96, 96, 3))) == "vww01"
    assert model_id_for(_graph((1, 1, 640))) == "ad01"
    assert model_id_for(_graph((8, 8, 1)), "mine-1") == "mine-1"
    with pytest.raises(HarnessError, match="none of MLPerf Tiny's"):
        model_id_for(_graph((8, 8, 1)))
    with pytest.raises(HarnessError, match="ic01 takes input"):
        model_id_for(_graph((8, 8, 1)), "ic01")
    with pytest.raises(HarnessError, match="letters, digits"):
        model_id_for(_graph((8, 8, 1)), "bad]id")


def test_byte_tables_quantize_as_sample_images():
    quant = InputQuantization(8, -1.0, 1.0)
    pixels = np.arange(256, dtype=np.float32) / np.float32(255.0)
    assert np.array_equal(pixel_table(quant), quantize_real(real_images(pixels, quant=quant), quant))
    assert list(pixel_table(InputQuantization(8, 0.0, 255.0))) == list(range(256))  # ResNet-8: raw pixels
    int8 = byte_table(MlperfConfig("kws01", quant))
    assert int8[0x80] == pixel_table(quant)[0] and int8[0x7F] == pixel_table(quant)[255]  # -128 .. 127
    graph = _graph((1, 1, 4))
    raw = np.array([-1.0, 0.0, 0.5, 3.0], dtype="<f4").tobytes()
    zp = quant.zero_point  # 127: -low / scale is 127.4999... at the float32 scale
    assert quantize_loaded(raw, graph, MlperfConfig("ad01", quant)).ravel().tolist() == [0, zp, zp + 64, 255]


@pytest.mark.parametrize("value, text", [(0.0, "0.000"), (1.0004, "1.000"), (1.0006, "1.001"), (-0.0004, "0.000"),
                                         (-2.5, "-2.500"), (12.3456, "12.346"), (0.0015, "0.002")])
def test_scores_print_with_three_decimals(value, text):
    assert format_score(value) == text
