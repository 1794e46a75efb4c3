"""TFLite (float) model -> FloatGraph, parsed with the `tflite` flatbuffer package.

TFLite is NHWC like the IR: conv weights are OHWI ([O][kh][kw][I], the IR layout), depthwise
[1][kh][kw][C], fully connected [O][I] over the input flattened in H, W, C order. Weights stored
as int8 with a scale ("hybrid" float models) are dequantized. SAME padding is TensorFlow's (the
odd pixel at the bottom / right). Operators: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, ADD,
AVERAGE_POOL_2D, MAX_POOL_2D, MEAN (global average), RESHAPE (a flatten before the classifier),
PAD (folded into the next conv or pool), SOFTMAX (dropped at the end), fused ReLU / ReLU6.
"""
from __future__ import annotations

import numpy as np

from harness.errors import HarnessError
from harness.frontend.float_graph import FloatGraph
from harness.frontend.importer import GraphBuilder, rejection, same_padding
from harness.zoo.architecture import LayerSpec

FLOAT32, INT8 = 0, 9  # tflite.TensorType
NUMPY_TYPES = {0: np.float32, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8, 7: np.int16}
ACTIVATIONS = {0: "linear", 1: "relu", 3: "relu6"}  # tflite.ActivationFunctionType
SAME = 0  # tflite.Padding
SUPPORTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "AVERAGE_POOL_2D", "MAX_POOL_2D", "MEAN",
             "RESHAPE", "PAD", "SOFTMAX")


WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
# the last part of a Keras tensor name that belongs to the layer doing the operator's work
NAME_KEYWORDS = ("conv2d", "depthwise", "matmul", "avgpool", "maxpool", "add", "mean")


def import_tflite(data: bytes, source: str) -> FloatGraph:
    """The FloatGraph of a float TFLite model (one subgraph, batch 1)."""
    model, graph = _root(data, source)
    if graph is None or graph.InputsLength() != 1 or graph.OutputsLength() != 1:
        raise HarnessError(f"{source}: the harness imports models with one input and one output")
    reader = _Reader(model, graph, source)
    builder = GraphBuilder(source, source.rsplit(".", 1)[0], reader.name(graph.Inputs(0)),
                           reader.input_shape(graph.Inputs(0)))
    operators = [graph.Operators(k) for k in range(graph.OperatorsLength())]
    output = reader.name(graph.Outputs(0))
    for index, op in enumerate(operators):
        _convert(reader, builder, op, index, last=index == len(operators) - 1)
        if index == len(operators) - 1 and reader.op_name(op) == "SOFTMAX":
            output = reader.name(op.Inputs(0))
    return builder.finish(output)


class _Reader:
    """Tensors, buffers and operator codes of one subgraph."""

    def __init__(self, model, graph, source: str):
        import tflite

        self.tflite, self.model, self.graph, self.source = tflite, model, graph, source
        self.codes = {value: name for name, value in vars(tflite.BuiltinOperator).items() if not name.startswith("_")}

    def tensor(self, index: int):
        return self.graph.Tensors(index)

    def name(self, index: int) -> str:
        return self.tensor(index).Name().decode()

    def shape(self, index: int) -> tuple[int, ...]:
        tensor = self.tensor(index)
        signature = tensor.ShapeSignatureAsNumpy() if tensor.ShapeSignatureLength() else None
        if signature is not None and any(int(v) < 0 for v in signature[1:]):
            raise rejection(self.source, self.name(index), "tensor", f"dynamic shape {list(signature)}")
        return tuple(int(v) for v in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()

    def input_shape(self, index: int) -> tuple[int, int, int]:
        shape = self.shape(index)
        if not shape or shape[0] != 1:
            raise rejection(self.source, self.name(index), "input", f"batch must be 1, the shape is {list(shape)}")
        if self.tensor(index).Type() != FLOAT32:
            raise rejection(self.source, self.name(index), "input",
                            "the input is not float32: import the float model (the quantizer makes its own integers)")
        return _hwc(shape, self.source, self.name(index), "input")

    def op_name(self, op) -> str:
        code = self.model.OperatorCodes(op.OpcodeIndex())
        return self.codes.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")

    def constant(self, index: int, node: str, op: str) -> np.ndarray:
        """A constant tensor as float32 (int8 weights dequantized with their scales)."""
        tensor = self.tensor(index)
        data = self.model.Buffers(tensor.Buffer()).DataAsNumpy()
        if isinstance(data, int) or tensor.Type() not in NUMPY_TYPES:
            raise rejection(self.source, node, op, f"input {self.name(index)!r} is not a constant this importer reads")
        values = np.frombuffer(data.tobytes(), dtype=NUMPY_TYPES[tensor.Type()]).reshape(self.shape(index))
        quant = tensor.Quantization()
        if tensor.Type() == INT8:
            if quant is None or not quant.ScaleLength():
                raise rejection(self.source, node, op, f"int8 weights {self.name(index)!r} without a scale")
            scale, zero = quant.ScaleAsNumpy().astype(np.float64), quant.ZeroPointAsNumpy().astype(np.float64)
            axis = quant.QuantizedDimension()
            broadcast = [1] * values.ndim
            if scale.size > 1:
                broadcast[axis] = scale.size
            return ((values - zero.reshape(broadcast)) * scale.reshape(broadcast)).astype(np.float32)
        return values.astype(np.float32)

    def options(self, op, cls_name: str):
        table = op.BuiltinOptions()
        options = getattr(self.tflite, cls_name)()
        options.Init(table.Bytes, table.Pos)
        return options

    def input_quantization(self, index: int) -> tuple[float, float] | None:
        """The real range an int8/uint8 input's quantization covers, or None."""
        tensor = self.tensor(index)
        quant = tensor.Quantization()
        if tensor.Type() not in (3, 9) or quant is None or not quant.ScaleLength():
            return None
        scale, zero = float(quant.ScaleAsNumpy()[0]), float(quant.ZeroPointAsNumpy()[0])
        low, high = (-128, 127) if tensor.Type() == 9 else (0, 255)
        return scale * (low - zero), scale * (high - zero)


def input_range(data: bytes) -> tuple[float, float] | None:
    """The real input range a quantized TFLite model declares (None for a float input)."""
    model, graph = _root(data, "the --input-range-from file")
    return _Reader(model, graph, "").input_quantization(graph.Inputs(0))


def _root(data: bytes, source: str):
    """(model, first subgraph) of a TFLite flatbuffer; HarnessError if it is not one."""
    import tflite

    if data[4:8] != b"TFL3":
        raise HarnessError(f"{source}: not a TFLite model (no TFL3 identifier)")
    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        return model, model.Subgraphs(0)
    except Exception as error:  # the flatbuffer reader raises whatever a bad offset gives
        raise HarnessError(f"{source}: not a TFLite model ({error.__class__.__name__})") from None


def _hwc(shape: tuple[int, ...], source: str, node: str, op: str) -> tuple[int, int, int]:
    if len(shape) == 4:
        return shape[1], shape[2], shape[3]
    if len(shape) == 2:
        return 1, 1, shape[1]
    raise rejection(source, node, op, f"shape {list(shape)}: the IR holds H x W x C or flat tensors")


def _activation(reader: _Reader, options, node: str, op: str) -> str:
    fused = options.FusedActivationFunction()
    if fused not in ACTIVATIONS:
        raise rejection(reader.source, node, op, f"fused activation {fused} (supported: none, ReLU, ReLU6)")
    return ACTIVATIONS[fused]


def _layer_name(reader: _Reader, op, kind: str, index: int) -> str:
    """A short name from the file: the Keras layer that made the operator's weights or output
    (model/conv2d_3/Conv2D -> conv2d_3); else kind_index."""
    tensors = [reader.name(op.Inputs(1))] if kind in WEIGHTED and op.InputsLength() > 1 else []
    tensors.append(reader.name(op.Outputs(0)))
    for tensor in tensors:
        for component in tensor.split(";"):
            parts = component.split("/")
            if len(parts) >= 3 and parts[-1].lower() in NAME_KEYWORDS:
                return parts[-2]
    return f"{kind.lower()}_{index}"


def _convert(reader: _Reader, builder: GraphBuilder, op, index: int, last: bool) -> None:
    kind = reader.op_name(op)
    out = reader.name(op.Outputs(0))
    node = out.split(";")[0]
    inputs = [int(v) for v in op.InputsAsNumpy()] if op.InputsLength() else []
    if kind not in SUPPORTED:
        raise rejection(reader.source, node, kind, f"unsupported operator (supported: {', '.join(SUPPORTED)})")
    if kind == "SOFTMAX":
        if not last:
            raise rejection(reader.source, node, kind, "Softmax is supported only as the last operator (dropped)")
        builder.notes.append("final SOFTMAX dropped: the firmware outputs logits, argmax is unchanged")
        return
    shape = reader.shape(op.Outputs(0))
    if shape and shape[0] != 1:
        raise rejection(reader.source, node, kind, f"batch must be 1, the output shape is {list(shape)}")
    name = _layer_name(reader, op, kind, index)
    if kind == "RESHAPE":
        in_shape = reader.shape(inputs[0])
        if len(shape) != 2 or int(np.prod(in_shape)) != shape[1]:
            raise rejection(reader.source, node, kind, f"only a flatten to [1, N] is supported, got {list(shape)}")
        builder.alias(out, reader.name(inputs[0]), node, kind, flatten=_hwc(in_shape, reader.source, node, kind)[:2] != (1, 1))
        return
    if kind == "PAD":
        pads = reader.constant(inputs[1], node, kind).astype(np.int64)
        if pads.shape != (4, 2) or pads[0].any() or pads[3].any():
            raise rejection(reader.source, node, kind, "only spatial padding of an N x H x W x C tensor is supported")
        builder.add_pad(node, kind, reader.name(inputs[0]), out, (int(pads[1, 0]), int(pads[2, 0]), int(pads[1, 1]), int(pads[2, 1])))
        return
    declared = _hwc(shape, reader.source, node, kind)
    if kind == "ADD":
        options = reader.options(op, "AddOptions")
        builder.add_layer(out, node, kind, LayerSpec(name, "add", activation=_activation(reader, options, node, kind)),
                          [reader.name(i) for i in inputs], declared)
        return
    if kind == "MEAN":
        axes = sorted(int(v) for v in reader.constant(inputs[1], node, kind).reshape(-1))
        if axes != [1, 2]:
            raise rejection(reader.source, node, kind, f"only a mean over H and W (axes 1, 2) is supported, got {axes}")
        builder.add_layer(out, node, kind, LayerSpec(name, "global_avg_pool", activation="linear"),
                          [reader.name(inputs[0])], declared)
        return
    in_h, in_w, in_c = _hwc(reader.shape(inputs[0]), reader.source, node, kind)  # SAME pads this (padded) input
    source_tensor, pads = builder.take_padding(reader.name(inputs[0]))
    if kind == "FULLY_CONNECTED":
        options = reader.options(op, "FullyConnectedOptions")
        weight = reader.constant(inputs[1], node, kind)
        bias = reader.constant(inputs[2], node, kind) if len(inputs) > 2 and inputs[2] >= 0 else None
        builder.add_layer(out, node, kind, LayerSpec(name, "fully_connected", weight.shape[0],
                                                     activation=_activation(reader, options, node, kind)),
                          [source_tensor], declared, weight, bias)
        return
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        options = reader.options(op, "Conv2DOptions" if kind == "CONV_2D" else "DepthwiseConv2DOptions")
        if (options.DilationHFactor(), options.DilationWFactor()) != (1, 1):
            raise rejection(reader.source, node, kind, f"dilation {options.DilationHFactor()}x{options.DilationWFactor()} "
                                                       "(only 1 is supported)")
        weight = reader.constant(inputs[1], node, kind)
        if kind == "DEPTHWISE_CONV_2D":
            if weight.shape[-1] != in_c:
                raise rejection(reader.source, node, kind, f"depth multiplier {weight.shape[-1] // in_c} (only 1 is supported)")
            weight = weight[0]
        kh, kw = weight.shape[1:3] if kind == "CONV_2D" else weight.shape[:2]
        op_kind = "conv2d" if kind == "CONV_2D" else "depthwise_conv2d"
        bias = reader.constant(inputs[2], node, kind) if len(inputs) > 2 and inputs[2] >= 0 else None
    else:
        options = reader.options(op, "Pool2DOptions")
        kh, kw = options.FilterHeight(), options.FilterWidth()
        weight = bias = None
        op_kind = "avg_pool" if kind == "AVERAGE_POOL_2D" else "max_pool"
    stride = (options.StrideH(), options.StrideW())
    if options.Padding() == SAME:
        (top, bottom), (left, right) = same_padding(in_h, kh, stride[0]), same_padding(in_w, kw, stride[1])
        pads = (pads[0] + top, pads[1] + left, pads[2] + bottom, pads[3] + right)
    activation = _activation(reader, options, node, kind)
    if op_kind == "avg_pool" and any(pads):
        raise rejection(reader.source, node, kind, "a padded average pool (TFLite averages the in-bounds taps only)")
    if op_kind == "avg_pool" and (kh, kw) == (in_h, in_w) and declared[:2] == (1, 1):
        spec = LayerSpec(name, "global_avg_pool", activation=activation)
    else:
        spec = LayerSpec(name, op_kind, weight.shape[0] if op_kind == "conv2d" else 0, (kh, kw), stride, pads,
                         activation=activation)
    builder.add_layer(out, node, kind, spec, [source_tensor], declared, weight, bias)
