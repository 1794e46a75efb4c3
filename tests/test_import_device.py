"""Imported models run bit-exactly on the --board target: MLPerf Tiny's fp32 ResNet-8 TFLite file
imported with `harness import` and measured over the 20 CIFAR-10 samples at all-8-bit and at the
mixed policy that fits half its weight bytes; DS-CNN and the autoencoder from their fp32 TFLite
files on seeded random inputs (no keyword or machine-sound samples here: their accuracy is not
measured, only bit-exactness); a PyTorch module exported to ONNX and imported, post-training and
QAT-trained on synthetic data. Each run takes 10-30 s on qemu-m7 (building the firmware dominates)."""
import json

import pytest

from harness.cli import main
from harness.paths import POLICIES_DIR, REPO_ROOT

pytestmark = pytest.mark.device
DATA = REPO_ROOT / "tests" / "data"
MODELS = DATA / "mlperf-tiny"
CIFAR10, IMAGENET32 = DATA / "samples" / "cifar10", DATA / "samples" / "imagenet32"
FP32_REFERENCE_TOP1 = 19  # ic_resnet8_fp32.tflite on the 20 samples (tests/test_tflite_import.py checks it)


def _measure(policy, board_name, tmp_path, *options) -> dict:
    report = tmp_path / "report.json"
    code = main(["measure", str(policy), "--board", board_name, "--out", str(report), *options])
    result = json.loads(report.read_text())
    assert code == 0 and result["bit_exact"] == result["images"], result
    return result


def test_resnet8_imported_and_measured_at_all_8_bit(board_name, tmp_path, capsys):
    policy = tmp_path / "resnet8.json"
    assert main(["import", str(MODELS / "ic_resnet8_fp32.tflite"), "--input-range-from",
                 str(MODELS / "ic_resnet8_int8.tflite"), "--out", str(policy), "--board", board_name]) == 0
    report = _measure(policy, board_name, tmp_path, "--data", str(CIFAR10), "--calibration", str(IMAGENET32))
    assert report["images"] == 20
    assert report["device_accuracy"] * 20 >= FP32_REFERENCE_TOP1 - 1
    print(f"resnet8 all-8-bit on {board_name}: {report['bit_exact']}/20 bit-exact, top-1 {report['device_accuracy']:.0%}")


def test_resnet8_mixed_policy_at_half_the_weight_bytes(board_name, tmp_path):
    from harness.ir.memory import memory_report
    from harness.policy import load_policy, parse_policy
    from harness.quantize.lower import structural_graph

    mixed = load_policy(POLICIES_DIR / "resnet8-tflite-mixed.json")
    all8 = parse_policy(dict(mixed.document, layers={}), base_dir=POLICIES_DIR)
    assert memory_report(structural_graph(mixed)).weight_bytes * 2 <= memory_report(structural_graph(all8)).weight_bytes
    report = _measure(POLICIES_DIR / "resnet8-tflite-mixed.json", board_name, tmp_path,
                      "--data", str(CIFAR10), "--calibration", str(IMAGENET32))
    assert report["images"] == 20 and report["device_accuracy"] >= 0.6  # 15/20 measured (docs/models.md)
    print(f"resnet8 mixed on {board_name}: {report['bit_exact']}/20 bit-exact, top-1 {report['device_accuracy']:.0%}")


# real input ranges of the two networks, from their int8 files' input quantization (data/README)
@pytest.mark.parametrize("model, input_range", [("kws_dscnn_fp32.tflite", "-123.4,25.7"),
                                                ("ad_fc_autoencoder_fp32.tflite", "-84.8,14.9")])
def test_dscnn_and_autoencoder_bit_exact_on_random_inputs(board_name, tmp_path, model, input_range):
    policy = tmp_path / "model.json"
    assert main(["import", str(MODELS / model), f"--input-range={input_range}", "--out", str(policy)]) == 0
    report = _measure(policy, board_name, tmp_path, "--images", "3")
    assert report["images"] == 3 and report["device_accuracy"] is None  # random inputs: nothing to score


def test_pytorch_module_through_onnx_bit_exact(board_name, tmp_path):
    pytest.importorskip("torch")
    from support.torch_module import UserNet, export

    model = export(UserNet(), tmp_path / "user.onnx")
    policy = tmp_path / "user.json"
    assert main(["import", str(model), "--input-range=-3,3", "--out", str(policy)]) == 0
    report = _measure(policy, board_name, tmp_path, "--images", "3")
    assert report["images"] == 3


def test_pytorch_module_qat_trained_and_bit_exact(board_name, tmp_path):
    """The PyTorch module, exported and imported, QAT-trained briefly (3 epochs on 256 synthetic
    images whose label is the quadrant of channel 0 made brighter), lowered and measured on 32
    more: bit-exact on the board, and it learned (97 % here; chance is 25 %)."""
    pytest.importorskip("torch")
    from support.torch_module import INPUT_SHAPE, UserNet, export

    from harness.backends import load_board
    from harness.datasets.registry import quantize_real
    from harness.frontend.importer import load_model_file
    from harness.measure.log import RunLog
    from harness.measure.run import measure
    from harness.policy import load_policy
    from harness.quantize.lower import lower
    from harness.quantize.qat import run_qat

    import torch

    torch.manual_seed(0)
    model = export(UserNet(), tmp_path / "user.onnx")
    policy_file = tmp_path / "user.json"
    assert main(["import", str(model), "--input-range=-1,1", "--out", str(policy_file)]) == 0
    document = json.loads(policy_file.read_text())
    document["qat"] = {"epochs": 3, "lr": 3e-3}
    policy_file.write_text(json.dumps(document))
    policy = load_policy(policy_file)
    images, labels = _quadrant_images(INPUT_SHAPE, 256 + 32)
    net = run_qat(policy, load_model_file(policy.model.file), images[:256], labels[:256])
    graph = lower(net, policy, {"model": policy.model.label, "qat": "synthetic quadrants, 3 epochs"})
    inputs = quantize_real(images[256:], policy.input)  # real inputs in [-1, 1] -> the policy's integers
    with RunLog(tmp_path / "log.jsonl") as log:
        report = measure(policy, graph, load_board(board_name), inputs, labels[256:], log)
    assert report["bit_exact"] == report["images"] == 32
    assert report["device_accuracy"] >= 0.9
    print(f"user net QAT 3 epochs: {report['bit_exact']}/32 bit-exact, top-1 {report['device_accuracy']:.0%} (chance 25%)")


def _quadrant_images(shape, count: int):
    """Images H x W x 3 in [-1, 1]: noise in [-0.5, 0.5], the label's quadrant of channel 0 + 0.5."""
    import numpy as np

    _, _, h, w = shape
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, count)
    images = rng.uniform(-0.5, 0.5, size=(count, h, w, 3)).astype(np.float32)
    for image, label in zip(images, labels):
        i, j = divmod(int(label), 2)
        image[i * h // 2:(i + 1) * h // 2, j * w // 2:(j + 1) * w // 2, 0] += 0.5
    return images, labels


def test_resnet8_channelwise_policy_builds_fits_and_is_bit_exact(board_name, tmp_path):
    """Per-output-channel bits and pruned channels on a residual network: the lowering reorders
    and shrinks it, the firmware fits the board and every output over the 20 samples is bit-exact."""
    from harness.policy import load_policy
    from harness.quantize.lower import structural_graph

    policy = load_policy(POLICIES_DIR / "resnet8-tflite-channelwise.json")
    graph = structural_graph(policy)
    assert any(isinstance(layer.w_bits, list) for layer in graph.layers)
    assert graph.tensors["add"].channels < 16  # pruned channels dropped from the arena
    report = _measure(POLICIES_DIR / "resnet8-tflite-channelwise.json", board_name, tmp_path,
                      "--data", str(CIFAR10), "--calibration", str(IMAGENET32))
    memory = report["memory"]
    assert report["images"] == 20
    assert memory["flash_bytes"] <= memory["flash_budget"] and memory["ram_bytes"] <= memory["ram_budget"], memory
    print(f"resnet8 channel-wise on {board_name}: {report['bit_exact']}/20 bit-exact, "
          f"top-1 {report['device_accuracy']:.0%}, flash {memory['flash_bytes']} B, RAM {memory['ram_bytes']} B")
