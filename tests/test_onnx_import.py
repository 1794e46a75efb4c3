"""The ONNX importer: small graphs built with onnx.helper compute, after import, what the ONNX
reference evaluator computes (layouts, padding, batch-norm folding, the NCHW flatten before the
classifier); every construct the IR cannot hold is refused by `harness import` with one line
naming the node and op, exit code 2 and no policy written."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the ONNX importer needs the `onnx` package (pip install onnx)")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

from harness.cli import main  # noqa: E402
from harness.frontend.float_forward import forward  # noqa: E402
from harness.frontend.onnx_import import import_onnx  # noqa: E402

RNG = np.random.default_rng(0)


def _init(name: str, *shape: int, positive: bool = False) -> onnx.TensorProto:
    values = RNG.uniform(0.5, 1.5, shape) if positive else RNG.normal(0, 0.5, shape)
    return numpy_helper.from_array(values.astype(np.float32), name)


def _model(nodes, initializers, input_shape=(1, 3, 9, 7), output_shape=None) -> bytes:
    graph = helper.make_graph(nodes, "test", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_shape))],
                              [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, output_shape)],
                              initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()


def _bn(name: str, inp: str, out: str, channels: int) -> tuple[onnx.NodeProto, list]:
    inits = [_init(f"{name}_g", channels, positive=True), _init(f"{name}_b", channels), _init(f"{name}_m", channels),
             _init(f"{name}_v", channels, positive=True)]
    return helper.make_node("BatchNormalization", [inp, *(i.name for i in inits)], [out], name=f"/{name}/BatchNormalization"), inits


def residual_net() -> bytes:
    """conv 5x3 + BN + ReLU; Pad + depthwise 3x3/2 SAME_UPPER + ReLU6; 1x1 conv; Add; ReLU;
    MaxPool 2x2; Flatten of a 2x2x4 tensor; Gemm; Softmax."""
    bn, bn_inits = _bn("bn1", "c1", "b1", 4)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="/conv1/Conv", kernel_shape=[5, 3], pads=[2, 1, 2, 1]),
        bn,
        helper.make_node("Relu", ["b1"], ["r1"], name="/relu1/Relu"),
        helper.make_node("Pad", ["r1", "pads"], ["p1"], name="/pad/Pad", mode="constant"),
        helper.make_node("Conv", ["p1", "w2", "bias2"], ["c2"], name="/dw/Conv", group=4, strides=[2, 2],
                         auto_pad="SAME_UPPER"),
        helper.make_node("Clip", ["c2", "zero", "six"], ["r2"], name="/relu6/Clip"),
        helper.make_node("Conv", ["r2", "w3", "bias3"], ["c3"], name="/pw/Conv"),
        helper.make_node("Add", ["c3", "r2"], ["a"], name="/add/Add"),
        helper.make_node("Relu", ["a"], ["ra"], name="/relu2/Relu"),
        helper.make_node("MaxPool", ["ra"], ["m"], name="/pool/MaxPool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["m"], ["f"], name="/flatten/Flatten"),
        helper.make_node("Gemm", ["f", "wfc", "bfc"], ["logits"], name="/fc/Gemm", transB=1),
        helper.make_node("Softmax", ["logits"], ["prob"], name="/softmax/Softmax"),
    ]
    inits = [_init("w1", 4, 3, 5, 3), *bn_inits, numpy_helper.from_array(np.array([0, 0, 1, 0, 0, 0, 0, 1], np.int64), "pads"),
             _init("w2", 4, 1, 3, 3), _init("bias2", 4), numpy_helper.from_array(np.float32(0), "zero"),
             numpy_helper.from_array(np.float32(6), "six"), _init("w3", 4, 4, 1, 1), _init("bias3", 4),
             _init("wfc", 5, 16), _init("bfc", 5)]
    return _model(nodes, inits)


def matmul_net() -> bytes:
    """conv 3x3/2 with pads; AveragePool 2x2 counting the padding; GlobalAveragePool; MatMul + Add."""
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="/conv/Conv", kernel_shape=[3, 3], strides=[2, 2],
                         pads=[0, 1, 1, 0]),
        helper.make_node("Relu", ["c1"], ["r1"], name="/relu/Relu"),
        helper.make_node("AveragePool", ["r1"], ["p"], name="/avg/AveragePool", kernel_shape=[2, 2],
                         pads=[1, 1, 0, 0], count_include_pad=1),
        helper.make_node("Identity", ["p"], ["i"], name="/id/Identity"),
        helper.make_node("GlobalAveragePool", ["i"], ["g"], name="/gap/GlobalAveragePool"),
        helper.make_node("Flatten", ["g"], ["f"], name="/flat/Flatten"),
        helper.make_node("MatMul", ["f", "wfc"], ["mm"], name="/fc/MatMul"),
        helper.make_node("Add", ["mm", "bfc"], ["logits"], name="/fc/Add"),
    ]
    inits = [_init("w1", 6, 3, 3, 3), _init("b1", 6), _init("wfc", 6, 4), _init("bfc", 4)]
    return _model(nodes, inits)


@pytest.mark.parametrize("build, last", [(residual_net, "prob"), (matmul_net, "logits")])
def test_imported_graph_computes_what_onnx_computes(build, last):
    data = build()
    float_graph = import_onnx(data, "net.onnx")
    session = ReferenceEvaluator(onnx.load_from_string(data))
    for _ in range(3):
        x = RNG.normal(0, 1, (1, 3, 9, 7)).astype(np.float32)
        expected = session.run(None, {"x": x})[0].reshape(-1)
        ours = forward(float_graph, x[0].transpose(1, 2, 0))
        if last == "prob":  # the importer drops the final Softmax
            ours = np.exp(ours - ours.max()) / np.exp(ours - ours.max()).sum()
        np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-5)


def test_structure_names_and_notes():
    graph = import_onnx(residual_net(), "net.onnx")
    specs = {spec.name: spec for spec in graph.architecture.layers}
    assert list(specs) == ["conv1", "dw", "pw", "add", "pool", "fc"]
    assert specs["conv1"].kernel_hw == (5, 3) and specs["conv1"].activation == "relu"
    # the Pad (1 row on top, 1 column on the right), then SAME_UPPER of the padded 10x8 input at
    # stride 2 (one more row below, one more column right)
    assert specs["dw"].op == "depthwise_conv2d" and specs["dw"].padding_tlbr == (1, 0, 1, 2)
    assert specs["dw"].activation == "relu6" and specs["add"].inputs == ("pw", "dw")
    assert specs["pool"].op == "max_pool" and graph.architecture.input_shape == (9, 7, 3)
    assert any("Softmax" in note for note in graph.notes)


def _reject(tmp_path, capsys, data: bytes, *expected: str) -> None:
    model, out = tmp_path / "bad.onnx", tmp_path / "bad.json"
    model.write_bytes(data)
    assert main(["import", str(model), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: bad.onnx: ") and "Traceback" not in captured.err, captured.err
    for text in expected:
        assert text in lines[0], lines[0]
    assert not out.exists() and captured.out == ""


def _classifier(inp: str, features: int) -> tuple[list, list]:
    """Flatten + Gemm to 3 classes, so a test graph fails only where it means to."""
    return ([helper.make_node("Flatten", [inp], ["flat"], name="/flatten/Flatten"),
             helper.make_node("Gemm", ["flat", "wfc"], ["logits"], name="/fc/Gemm", transB=1)], [_init("wfc", 3, features)])


def _one_node(node, inits, features: int, **model_options) -> bytes:
    tail, tail_inits = _classifier(node.output[0], features)
    return _model([node, *tail], inits + tail_inits, **model_options)


def _conv(**attributes):
    return helper.make_node("Conv", ["x", "w"], ["c"], name="/conv/Conv", **attributes)


REJECTED = {
    "unsupported operator": (lambda: _one_node(helper.make_node("Sigmoid", ["x"], ["c"], name="/act/Sigmoid"), [], 189),
                             ["'/act/Sigmoid' (Sigmoid)", "unsupported operator"]),
    "dilation 2": (lambda: _one_node(_conv(kernel_shape=[3, 3], dilations=[2, 2]), [_init("w", 2, 3, 3, 3)], 2 * 5 * 3),
                   ["'/conv/Conv' (Conv)", "dilations [2, 2]"]),
    "depth multiplier 2": (lambda: _one_node(_conv(kernel_shape=[3, 3], group=3), [_init("w", 6, 1, 3, 3)], 6 * 7 * 5),
                           ["(Conv)", "group 3", "depth multiplier 1"]),
    "grouped convolution": (lambda: _model(
        [helper.make_node("Conv", ["x", "w0"], ["c0"], name="/c0/Conv", kernel_shape=[1, 1]),
         helper.make_node("Conv", ["c0", "w"], ["c"], name="/conv/Conv", kernel_shape=[1, 1], group=2),
         *_classifier("c", 4 * 9 * 7)[0]], [_init("w0", 4, 3, 1, 1), _init("w", 4, 2, 1, 1), _init("wfc", 3, 4 * 9 * 7)]),
        ["'/conv/Conv' (Conv)", "group 2"]),
    "dynamic shape": (lambda: _one_node(_conv(kernel_shape=[1, 1]), [_init("w", 2, 3, 1, 1)], 2 * 9 * 7,
                                        input_shape=(1, 3, "height", 7)), ["dynamic shape"]),
    "batch 2": (lambda: _one_node(_conv(kernel_shape=[1, 1]), [_init("w", 2, 3, 1, 1)], 2 * 9 * 7, input_shape=(2, 3, 9, 7)),
                ["batch must be 1"]),
    "clip other than relu6": (lambda: _one_node(helper.make_node("Clip", ["x", "lo", "hi"], ["c"], name="/clip/Clip"),
                                                [numpy_helper.from_array(np.float32(-1), "lo"),
                                                 numpy_helper.from_array(np.float32(1), "hi")], 189),
                              ["'/clip/Clip' (Clip)", "Clip(-1.0, 1.0)"]),
    "padded average pool excluding the padding": (
        lambda: _one_node(helper.make_node("AveragePool", ["x"], ["c"], name="/avg/AveragePool", kernel_shape=[3, 3],
                                           pads=[1, 1, 1, 1]), [], 189),
        ["'/avg/AveragePool' (AveragePool)", "count_include_pad"]),
    "ceil mode": (lambda: _one_node(helper.make_node("MaxPool", ["x"], ["c"], name="/max/MaxPool", kernel_shape=[2, 2],
                                                     strides=[2, 2], ceil_mode=1), [], 3 * 5 * 4),
                  ["'/max/MaxPool' (MaxPool)", "ceil_mode"]),
    "reflect padding": (lambda: _one_node(helper.make_node("Pad", ["x", "p"], ["c"], name="/pad/Pad", mode="reflect"),
                                          [numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "p")],
                                          3 * 11 * 9), ["'/pad/Pad' (Pad)", "reflect"]),
    "softmax in the middle": (lambda: _one_node(helper.make_node("Softmax", ["x"], ["c"], name="/sm/Softmax"), [], 189),
                              ["'/sm/Softmax' (Softmax)", "last node"]),
    "non-constant weights": (lambda: _model([helper.make_node("Identity", ["x"], ["w"], name="/id/Identity"),
                                             helper.make_node("Conv", ["x", "w"], ["c"], name="/conv/Conv")], []),
                             ["'/conv/Conv' (Conv)", "must be a constant"]),
    "no classifier at the end": (lambda: _model([_conv(kernel_shape=[1, 1])], [_init("w", 2, 3, 1, 1)]),
                                 ["(output)", "must end in a fully connected layer"]),
    "activation after the classifier": (lambda: _model(
        [*_classifier("x", 189)[0], helper.make_node("Relu", ["logits"], ["r"], name="/out/Relu")], [_init("wfc", 3, 189)]),
        ["int32 logits"]),
}


@pytest.mark.parametrize("construct", list(REJECTED))
def test_rejected_construct_gives_one_line_and_exit_2(tmp_path, capsys, construct):
    build, expected = REJECTED[construct]
    _reject(tmp_path, capsys, build(), *expected)


def test_not_an_onnx_file(tmp_path, capsys):
    _reject(tmp_path, capsys, b"not a protobuf at all", "not a valid ONNX model")


def test_pytorch_module_exported_imported_computes_the_same(tmp_path):
    torch = pytest.importorskip("torch")
    from support.torch_module import INPUT_SHAPE, UserNet, export

    torch.manual_seed(0)
    net = UserNet()
    with torch.no_grad():  # non-trivial batch-norm statistics, so folding is tested
        for bn in (net.stem_bn, net.body_bn):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    path = export(net, tmp_path / "user.onnx")
    graph = import_onnx(path.read_bytes(), path.name)
    ops = [spec.op for spec in graph.architecture.layers]
    assert ops == ["conv2d", "max_pool", "conv2d", "add", "max_pool", "fully_connected"]
    assert graph.architecture.layers[0].kernel_hw == (5, 3) and graph.architecture.layers[0].activation == "relu6"
    x = torch.randn(INPUT_SHAPE)
    with torch.no_grad():
        expected = net(x).numpy().reshape(-1)
    np.testing.assert_allclose(forward(graph, x[0].permute(1, 2, 0).numpy()), expected, rtol=1e-4, atol=1e-5)
