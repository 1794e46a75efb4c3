"""The TFLite importer on MLPerf Tiny's reference float models (tests/data/mlperf-tiny): the
structure it reads, its float graph against the TFLite interpreter, the post-training integer
graph of ResNet-8 on the 20 CIFAR-10 samples, `harness import` and `harness evaluate --reference`;
on small files written here (PAD, MAX_POOL_2D, MEAN) against the interpreter, and one test per
refused construct (one line naming the node and op, exit 2, nothing written)."""
import json

import numpy as np
import pytest

from harness.cli import main
from harness.datasets import registry
from harness.frontend.float_forward import forward
from harness.frontend.importer import load_model_file
from harness.ir import reference
from harness.paths import POLICIES_DIR, REPO_ROOT
from harness.policy import InputQuantization, load_policy, parse_policy
from harness.quantize.imported import model_file_graph

DATA = REPO_ROOT / "tests" / "data"
RESNET8, RESNET8_INT8 = DATA / "mlperf-tiny" / "ic_resnet8_fp32.tflite", DATA / "mlperf-tiny" / "ic_resnet8_int8.tflite"
DSCNN, AUTOENCODER = DATA / "mlperf-tiny" / "kws_dscnn_fp32.tflite", DATA / "mlperf-tiny" / "ad_fc_autoencoder_fp32.tflite"
CIFAR10, IMAGENET32 = DATA / "samples" / "cifar10", DATA / "samples" / "imagenet32"
PIXELS = InputQuantization(8, 0.0, 255.0)


def test_resnet8_structure():
    graph = load_model_file(RESNET8)
    arch = graph.architecture
    assert arch.input_shape == (32, 32, 3) and arch.num_classes == 10
    assert [spec.op for spec in arch.layers].count("add") == 3
    specs = {spec.name: spec for spec in arch.layers}
    # TFLite SAME at stride 2 on 32x32: the odd row and column of padding at the bottom / right
    assert specs["conv2d_3"].padding_tlbr == (0, 0, 1, 1) and specs["conv2d_3"].stride_hw == (2, 2)
    assert specs["add"].inputs == ("conv2d", "conv2d_2") and specs["add"].activation == "relu"
    assert specs["average_pooling2d"].op == "global_avg_pool"
    assert any("SOFTMAX" in note for note in graph.notes)


def test_dscnn_and_autoencoder_structure():
    dscnn = load_model_file(DSCNN)
    first = dscnn.architecture.layers[0]
    assert (first.kernel_hw, first.stride_hw, first.padding_tlbr) == ((10, 4), (2, 2), (4, 1, 5, 1))
    assert [spec.op for spec in dscnn.architecture.layers].count("depthwise_conv2d") == 4
    # the "float" DS-CNN stores its conv weights as int8 with a scale: dequantized, not raw codes
    assert np.abs(dscnn.layers[first.name].weight).max() < 2.0
    autoencoder = load_model_file(AUTOENCODER).architecture
    assert autoencoder.input_shape == (1, 1, 640) and autoencoder.num_classes == 640
    assert [spec.out_channels for spec in autoencoder.layers] == [128] * 4 + [8] + [128] * 4 + [640]


def _litert_outputs(model, real):
    from harness.frontend.tflite_reference import ReferenceUnavailable, reference_outputs

    try:
        return reference_outputs(model, real)
    except ReferenceUnavailable as why:
        pytest.skip(str(why))


# DS-CNN's "float" file keeps int8 weights: TFLite runs it as a hybrid model that also rounds the
# activations to int8 on the fly, so its probabilities match our float graph only to about 1 %
@pytest.mark.parametrize("model, shape, atol", [(RESNET8, (32, 32, 3), 1e-4), (DSCNN, (49, 10, 1), 2e-2),
                                               (AUTOENCODER, (1, 1, 640), 1e-4)])
def test_float_graph_computes_what_the_tflite_interpreter_computes(model, shape, atol):
    graph = load_model_file(model)
    real = np.random.default_rng(0).uniform(0, 1, (3, *shape)).astype(np.float32)
    if model == RESNET8:
        split = registry.load(f"samples:{CIFAR10}", shape)
        real = registry.integer_inputs(split, split.test_images[:3], PIXELS)  # the raw 0..255 pixels
    expected = _litert_outputs(model, real.astype(np.float32))
    for x, reference_out in zip(real, expected):
        ours = forward(graph, x)
        if graph.notes:  # Softmax dropped: compare probabilities
            ours = np.exp(ours - ours.max()) / np.exp(ours - ours.max()).sum()
        np.testing.assert_allclose(ours, reference_out, rtol=1e-4, atol=atol)
        assert ours.argmax() == reference_out.argmax()


def test_import_writes_a_starter_policy_that_policy_check_accepts(tmp_path, capsys):
    out = tmp_path / "resnet8.json"
    assert main(["import", str(RESNET8), "--input-range-from", str(RESNET8_INT8), "--out", str(out), "--name", "r8"]) == 0
    printed = capsys.readouterr().out
    assert "conv2d_7" in printed and "policy written to" in printed
    document = json.loads(out.read_text())
    assert document["input"] == {"bits": 8, "range": [0.0, 255.0]}  # the int8 file's scale 1, zero-point -128
    assert document["layers"]["conv2d"] == {"w_bits": 8, "a_bits": 8} and document["layers"]["dense"] == {"w_bits": 8}
    assert document["budget"] == {"flash": 2 * 1024 * 1024, "ram": 512 * 1024}
    policy = load_policy(out)
    assert policy.model.file == RESNET8 or policy.model.file.resolve() == RESNET8.resolve()
    assert main(["policy", "check", str(out)]) == 0
    assert main(["import", str(RESNET8), "--out", str(out)]) == 2  # exists: not overwritten without --force
    assert "--force" in capsys.readouterr().err


def test_resnet8_post_training_integer_top1_on_the_cifar10_samples():
    """Calibrated on ImageNet photos shrunk to 32x32, never on the measured CIFAR-10 images."""
    policy = load_policy(POLICIES_DIR / "resnet8-tflite-mixed.json")
    int8 = _all8(policy)
    _, inputs, labels = registry.integer_test_set(int8.with_data(f"samples:{CIFAR10}"))
    graph = model_file_graph(int8, IMAGENET32)
    top1 = sum(int(reference.predict(graph, x).argmax() == y) for x, y in zip(inputs, labels))
    assert top1 == 19  # as the fp32 reference (docs/models.md; at most one image below was asked)
    mixed = model_file_graph(policy, IMAGENET32)
    mixed_top1 = sum(int(reference.predict(mixed, x).argmax() == y) for x, y in zip(inputs, labels))
    assert mixed_top1 == 15  # docs/models.md


def _all8(policy):
    """The mixed policy with every layer back at 8 bits (parsed as if beside it: model.file resolves)."""
    return parse_policy(dict(policy.document, name="resnet8-tflite-int8", layers={}), base_dir=POLICIES_DIR)


def test_evaluate_with_references(tmp_path, capsys):
    pytest.importorskip("ai_edge_litert", reason="needs the `reference` extra (ai-edge-litert)")
    out = tmp_path / "r8.json"
    assert main(["import", str(RESNET8), "--input-range", "0,255", "--out", str(out)]) == 0
    result = tmp_path / "evaluate.json"
    assert main(["evaluate", str(out), "--data", str(CIFAR10), "--calibration", str(IMAGENET32),
                 "--reference", str(RESNET8), "--reference", str(RESNET8_INT8), "--json", str(result)]) == 0
    check = json.loads(result.read_text())["cross_check"]
    assert check["images"] == 20
    assert [row["top1"] for row in check["references"]] == [19, 18]  # data/README: fp32 19/20, int8 18/20
    ours = {row["model"].split(" ")[1]: row["top1"] for row in check["ours"]}
    assert ours["float"] == 19 and ours["integer"] >= 18
    assert check["references"][0]["agreement_with_integer"] >= 18


def test_not_a_tflite_file_gives_one_line_and_exit_2(tmp_path, capsys):
    model, out = tmp_path / "junk.tflite", tmp_path / "junk.json"
    model.write_bytes(b"\0" * 64)
    assert main(["import", str(model), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "junk.tflite: not a TFLite model" in err and not out.exists()


def test_quantized_tflite_model_is_refused_naming_its_input(tmp_path, capsys):
    out = tmp_path / "int8.json"
    assert main(["import", str(RESNET8_INT8), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ic_resnet8_int8.tflite: node 'input_1_int8' (input): the input is not float32" in err
    assert not out.exists()


def test_reference_column_says_why_when_the_interpreter_is_missing(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    result = tmp_path / "evaluate.json"
    assert main(["evaluate", str(POLICIES_DIR / "resnet8-tflite-mixed.json"), "--data", str(CIFAR10),
                 "--reference", str(RESNET8), "--json", str(result)]) == 0
    row = json.loads(result.read_text())["cross_check"]["references"][0]
    assert row["top1"] is None and "ai-edge-litert is not installed" in row["missing"]


# --- small TFLite files written with the flatbuffer builder (tests/support/tflite_builder.py) ---

def _conv_options(**changes):
    fields = {"Padding": 0, "StrideH": 2, "StrideW": 2, "FusedActivationFunction": 1,
              "DilationHFactor": 1, "DilationWFactor": 1} | changes
    return ("Conv2DOptions", fields)


def _small_model(conv_kind="CONV_2D", conv_options=None, pool=("MAX_POOL_2D", 0), mean_axes=(1, 2), batch=1,
                 extra=None):
    """input 8x6x3 -> PAD (1 row on top, 1 column right) -> conv 3x3/2 SAME, ReLU -> 2x2/2 pool ->
    MEAN over H, W -> FULLY_CONNECTED to 3; pieces replaceable to make refused variants."""
    from support.tflite_builder import TFLiteModel

    rng = np.random.default_rng(0)
    m = TFLiteModel()
    x = m.tensor("input", [batch, 8, 6, 3])
    pads = m.tensor("pads", [4, 2], np.array([[0, 0], [1, 0], [0, 1], [0, 0]], np.int32))
    padded = m.tensor("padded", [batch, 9, 7, 3])
    m.op("PAD", [x, pads], [padded])
    shape = [1, 3, 3, 3 * (conv_options or {}).get("DepthMultiplier", 1)] if conv_kind == "DEPTHWISE_CONV_2D" \
        else [4, 3, 3, 3]
    channels = shape[-1] if conv_kind == "DEPTHWISE_CONV_2D" else 4
    weights = m.tensor("model/conv/Conv2D", shape, rng.normal(0, 0.5, shape).astype(np.float32))
    bias = m.tensor("model/conv/bias", [channels], rng.normal(0, 0.1, channels).astype(np.float32))
    conv = m.tensor("model/conv/Relu", [batch, 5, 4, channels])
    options = _conv_options(**(conv_options or {}))
    if conv_kind == "DEPTHWISE_CONV_2D":
        options = ("DepthwiseConv2DOptions", options[1] | {"DepthMultiplier": 1} | (conv_options or {}))
    m.op(conv_kind, [padded, weights, bias], [conv], options)
    pooled = m.tensor("model/pool/MaxPool", [batch, 3, 2, channels])
    m.op(pool[0], [conv], [pooled], ("Pool2DOptions", {"Padding": pool[1], "StrideH": 2, "StrideW": 2,
                                                        "FilterHeight": 2, "FilterWidth": 2}))
    axes = m.tensor("axes", [len(mean_axes)], np.array(mean_axes, np.int32))
    mean = m.tensor("model/gap/Mean", [batch, channels])
    m.op("MEAN", [pooled, axes], [mean], ("ReducerOptions", {"KeepDims": False}))
    fc_weights = m.tensor("model/fc/MatMul", [3, channels], rng.normal(0, 0.5, (3, channels)).astype(np.float32))
    logits = m.tensor("logits", [batch, 3])
    m.op("FULLY_CONNECTED", [mean, fc_weights, -1], [logits], ("FullyConnectedOptions", {}))
    if extra:
        out = m.tensor("model/extra/Out", [batch, 3])
        m.op(extra, [logits], [out])
        logits = out
    return m.serialize([x], [logits])


def test_pad_max_pool_and_mean_import_as_the_interpreter_runs_them(tmp_path):
    from harness.frontend.tflite_import import import_tflite

    data = _small_model()
    graph = import_tflite(data, "small.tflite")
    specs = {spec.name: spec for spec in graph.architecture.layers}
    assert list(specs) == ["conv", "pool", "gap", "fc"]
    # the PAD (top 1, right 1) plus SAME at stride 2 of the padded 9x7 input (1 / 1 rows, 1 / 1 columns)
    assert specs["conv"].padding_tlbr == (2, 1, 1, 2) and specs["pool"].op == "max_pool"
    assert specs["gap"].op == "global_avg_pool"
    path = tmp_path / "small.tflite"
    path.write_bytes(data)
    real = np.random.default_rng(1).normal(0, 1, (3, 8, 6, 3)).astype(np.float32)
    for x, expected in zip(real, _litert_outputs(path, real)):
        np.testing.assert_allclose(forward(graph, x), expected, rtol=1e-4, atol=1e-5)


TFLITE_REJECTED = {
    "dilation 2": (lambda: _small_model(conv_options={"DilationHFactor": 2, "DilationWFactor": 2}),
                   ["(CONV_2D)", "dilation 2x2"]),
    "depth multiplier 2": (lambda: _small_model("DEPTHWISE_CONV_2D", {"DepthMultiplier": 2}),
                           ["(DEPTHWISE_CONV_2D)", "depth multiplier 2"]),
    "fused tanh": (lambda: _small_model(conv_options={"FusedActivationFunction": 4}), ["(CONV_2D)", "fused activation 4"]),
    "padded average pool": (lambda: _small_model(pool=("AVERAGE_POOL_2D", 0)),
                            ["(AVERAGE_POOL_2D)", "padded average pool"]),
    "mean over channels": (lambda: _small_model(mean_axes=(3,)), ["(MEAN)", "axes 1, 2"]),
    "batch 2": (lambda: _small_model(batch=2), ["(input)", "batch must be 1"]),
    "unsupported operator": (lambda: _small_model(extra="LOGISTIC"), ["'model/extra/Out' (LOGISTIC)", "unsupported operator"]),
}


@pytest.mark.parametrize("construct", list(TFLITE_REJECTED))
def test_tflite_rejected_construct_gives_one_line_and_exit_2(tmp_path, capsys, construct):
    build, expected = TFLITE_REJECTED[construct]
    model, out = tmp_path / "bad.tflite", tmp_path / "bad.json"
    model.write_bytes(build())
    assert main(["import", str(model), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: bad.tflite: ") and "Traceback" not in captured.err, captured.err
    for text in expected:
        assert text in lines[0], lines[0]
    assert not out.exists()
