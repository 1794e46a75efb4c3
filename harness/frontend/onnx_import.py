"""ONNX model -> FloatGraph, with the `onnx` package (shapes from onnx.shape_inference).

ONNX is NCHW, the IR NHWC: conv weights [O][I][kh][kw] become [O][kh][kw][I], depthwise
[C][1][kh][kw] become [kh][kw][C], and a classifier reading a flattened C x H x W tensor has its
weight columns permuted to H, W, C order. Weights come from initializers and Constant nodes.
Operators: Conv (dense, depthwise), Gemm, MatMul (+ Add of a constant bias), BatchNormalization
(folded into the conv / fully connected before it), Relu, Clip(0, 6), Add, AveragePool,
GlobalAveragePool, MaxPool, Flatten / Reshape before a classifier, Pad (folded into the next conv
or pool), Softmax at the end (dropped), Identity, Dropout. A PyTorch module enters through
`torch.onnx.export` (docs/models.md).
"""
from __future__ import annotations

import numpy as np

from harness.errors import HarnessError
from harness.frontend.float_graph import FloatGraph
from harness.frontend.importer import GraphBuilder, rejection, same_padding
from harness.zoo.architecture import LayerSpec

SUPPORTED = ("Conv", "Gemm", "MatMul", "BatchNormalization", "Relu", "Clip", "Add", "AveragePool",
             "GlobalAveragePool", "MaxPool", "Flatten", "Reshape", "Pad", "Softmax", "Identity", "Dropout", "Constant")


def import_onnx(data: bytes, source: str) -> FloatGraph:
    """The FloatGraph of a float ONNX model (one input, one output, batch 1)."""
    import onnx
    from onnx import numpy_helper, shape_inference

    try:
        model = onnx.load_from_string(data)
        model = shape_inference.infer_shapes(model)
    except Exception as error:  # protobuf and the checker raise many kinds
        raise HarnessError(f"{source}: not a valid ONNX model ({error.__class__.__name__}: {str(error).splitlines()[0][:120]})") from None
    graph = model.graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            constants[node.output[0]] = numpy_helper.to_array(_attributes(node)["value"])
    inputs = [value for value in graph.input if value.name not in constants]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise HarnessError(f"{source}: the harness imports models with one input and one output")
    converter = _Converter(source, constants, _shapes(graph), _consumers(graph))
    input_value = inputs[0]
    shape = converter.shape(input_value.name, input_value.name, "input")
    if input_value.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise rejection(source, input_value.name, "input", "the input is not float32")
    converter.builder = GraphBuilder(source, source.rsplit(".", 1)[0], input_value.name, _hwc(shape, source, input_value.name, "input"))
    nodes = [node for node in graph.node if node.op_type != "Constant"]
    output = graph.output[0].name
    for index, node in enumerate(nodes):
        converter.convert(node, index, last=index == len(nodes) - 1)
        if node.op_type == "Softmax":
            output = node.input[0]
    return converter.builder.finish(output)


def _attributes(node) -> dict:
    from onnx import helper

    return {attribute.name: helper.get_attribute_value(attribute) for attribute in node.attribute}


def _shapes(graph) -> dict[str, tuple]:
    """Every tensor's dims (ints; a str for a symbolic dimension, None if unknown)."""
    shapes = {}
    for value in list(graph.input) + list(graph.value_info) + list(graph.output):
        if value.type.HasField("tensor_type") and value.type.tensor_type.HasField("shape"):
            shapes[value.name] = tuple(dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or None)
                                       for dim in value.type.tensor_type.shape.dim)
    return shapes


def _consumers(graph) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            counts[name] = counts.get(name, 0) + 1
    for value in graph.output:
        counts[value.name] = counts.get(value.name, 0) + 1
    return counts


def _hwc(shape: tuple[int, ...], source: str, node: str, op: str) -> tuple[int, int, int]:
    if len(shape) == 4:
        return shape[2], shape[3], shape[1]
    if len(shape) == 2:
        return 1, 1, shape[1]
    raise rejection(source, node, op, f"shape {list(shape)}: the IR holds N x C x H x W or N x features tensors")


def _layer_name(node, index: int) -> str:
    """`/layer1/conv/Conv` (torch.onnx.export) -> layer1_conv; else the node name or op_index."""
    parts = [part for part in node.name.split("/") if part]
    if len(parts) > 1:
        return "_".join(parts[:-1])
    return parts[0] if parts else f"{node.op_type.lower()}_{index}"


class _Converter:
    """Walks the nodes in order, feeding the GraphBuilder."""

    def __init__(self, source: str, constants: dict, shapes: dict, consumers: dict):
        self.source, self.constants, self.shapes, self.consumers = source, constants, shapes, consumers
        self.builder: GraphBuilder
        self.flattened_from: dict[str, tuple[int, int, int]] = {}  # flattened tensor -> its C x H x W

    def reject(self, node, reason: str) -> HarnessError:
        return rejection(self.source, node.name or node.output[0], node.op_type, reason)

    def shape(self, tensor: str, node_name: str, op: str) -> tuple[int, ...]:
        shape = self.shapes.get(tensor)
        if shape is None or any(dim is None for dim in shape):
            raise rejection(self.source, node_name, op, f"unknown shape of {tensor!r}")
        if any(isinstance(dim, str) for dim in shape):
            raise rejection(self.source, node_name, op, f"dynamic shape {list(shape)} of {tensor!r}")
        if not shape or shape[0] != 1:
            raise rejection(self.source, node_name, op, f"batch must be 1, {tensor!r} has shape {list(shape)}")
        return shape

    def constant(self, node, name: str) -> np.ndarray:
        if name not in self.constants:
            raise self.reject(node, f"input {name!r} must be a constant (an initializer or Constant node)")
        return np.asarray(self.constants[name])

    def convert(self, node, index: int, last: bool) -> None:
        op, attrs, b = node.op_type, _attributes(node), self.builder
        name = node.name or node.output[0]
        if op not in SUPPORTED:
            raise self.reject(node, f"unsupported operator (supported: {', '.join(SUPPORTED[:-1])})")
        if op == "Softmax":
            if not last:
                raise self.reject(node, "Softmax is supported only as the last node (dropped)")
            b.notes.append("final Softmax dropped: the firmware outputs logits, argmax is unchanged")
            return
        if op in ("Identity", "Dropout"):
            if op == "Dropout" and len(node.output) > 1 and node.output[1] and self.consumers.get(node.output[1]):
                raise self.reject(node, "the dropout mask is read")
            b.alias(node.output[0], node.input[0], name, op)
            return
        if op in ("Flatten", "Reshape"):
            self._flatten(node, attrs)
            return
        if op == "Pad":
            self._pad(node, attrs)
            return
        if op in ("Relu", "Clip"):
            activation = "relu" if op == "Relu" else self._clip(node, attrs)
            b.fuse_activation(node.output[0], node.input[0], name, op, activation, self.consumers.get(node.input[0], 0))
            return
        if op == "BatchNormalization":
            self._batch_norm(node, attrs)
            return
        if op == "Add" and any(tensor in self.constants for tensor in node.input):
            self._bias_add(node)
            return
        if op == "MaxPool" and len(node.output) > 1 and node.output[1]:
            raise self.reject(node, "MaxPool indices output")
        declared = _hwc(self.shape(node.output[0], name, op), self.source, name, op)
        layer = _layer_name(node, index)
        if op == "Add":
            b.add_layer(node.output[0], name, op, LayerSpec(layer, "add", activation="linear"), list(node.input), declared)
        elif op == "GlobalAveragePool":
            b.add_layer(node.output[0], name, op, LayerSpec(layer, "global_avg_pool", activation="linear"),
                        [node.input[0]], declared)
        elif op in ("Gemm", "MatMul"):
            self._fully_connected(node, attrs, layer, declared)
        else:
            self._window(node, attrs, layer, declared)

    def _window(self, node, attrs: dict, layer: str, declared: tuple[int, int, int]) -> None:
        """Conv, AveragePool, MaxPool: kernel, stride, padding (Pads before folded in)."""
        op, b, name = node.op_type, self.builder, node.name or node.output[0]
        _, in_c, in_h, in_w = self.shape(node.input[0], name, op)  # SAME padding is of this (padded) input
        source, folded = b.take_padding(node.input[0])
        if any(d != 1 for d in attrs.get("dilations", [1, 1])):
            raise self.reject(node, f"dilations {list(attrs['dilations'])} (only 1 is supported)")
        if attrs.get("ceil_mode", 0):
            raise self.reject(node, "ceil_mode=1 (only floor is supported)")
        weight = bias = None
        if op == "Conv":
            weight = self.constant(node, node.input[1]).astype(np.float32)
            bias = self.constant(node, node.input[2]) if len(node.input) > 2 and node.input[2] else None
            kh, kw = weight.shape[2:]
        else:
            kh, kw = attrs["kernel_shape"]
        stride = tuple(attrs.get("strides", [1, 1]))
        pads = self._pads(node, attrs, (in_h, in_w), (kh, kw), stride)
        pads = tuple(p + q for p, q in zip(pads, folded))
        if op == "Conv":
            group = attrs.get("group", 1)
            if group == 1:
                spec = LayerSpec(layer, "conv2d", weight.shape[0], (kh, kw), stride, pads, activation="linear")
                weight = weight.transpose(0, 2, 3, 1)
            elif group == in_c and weight.shape[:2] == (in_c, 1):
                spec = LayerSpec(layer, "depthwise_conv2d", 0, (kh, kw), stride, pads, activation="linear")
                weight = weight[:, 0].transpose(1, 2, 0)
            else:
                raise self.reject(node, f"group {group} with weights {list(weight.shape)}: only dense and depthwise "
                                        "(depth multiplier 1) convolutions are supported")
        elif op == "AveragePool":
            if any(pads) and not attrs.get("count_include_pad", 0):
                raise self.reject(node, "a padded average pool without count_include_pad=1 (the IR averages over the "
                                        "whole window, padding included)")
            if (kh, kw) == (in_h, in_w) and not any(pads) and declared[:2] == (1, 1):
                spec = LayerSpec(layer, "global_avg_pool", activation="linear")
            else:
                spec = LayerSpec(layer, "avg_pool", 0, (kh, kw), stride, pads, activation="linear")
        else:
            spec = LayerSpec(layer, "max_pool", 0, (kh, kw), stride, pads, activation="linear")
        b.add_layer(node.output[0], name, node.op_type, spec, [source], declared, weight, bias)

    def _pads(self, node, attrs: dict, size: tuple[int, int], kernel: tuple[int, int],
              stride: tuple[int, int]) -> tuple[int, int, int, int]:
        auto = attrs.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            (top, bottom), (left, right) = (same_padding(s, k, st) for s, k, st in zip(size, kernel, stride))
            if auto == "SAME_LOWER":
                top, bottom, left, right = bottom, top, right, left
            return top, left, bottom, right
        if auto == "VALID":
            return 0, 0, 0, 0
        pads = [int(p) for p in attrs.get("pads", [0, 0, 0, 0])]
        return pads[0], pads[1], pads[2], pads[3]  # ONNX: [top, left, bottom, right]

    def _fully_connected(self, node, attrs: dict, layer: str, declared: tuple[int, int, int]) -> None:
        op, name = node.op_type, node.name or node.output[0]
        weight = self.constant(node, node.input[1]).astype(np.float32)
        if op == "Gemm":
            if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
                raise self.reject(node, "Gemm with transA, alpha or beta other than the defaults")
            weight = weight if attrs.get("transB", 0) else weight.T
            bias = self.constant(node, node.input[2]) if len(node.input) > 2 and node.input[2] else None
        else:
            weight, bias = weight.T, None
        if weight.ndim != 2:
            raise self.reject(node, f"weights of shape {list(weight.shape)}")
        chw = self.flattened_from.get(node.input[0])
        if chw is not None:  # ONNX flattened C, H, W; the IR reads H, W, C
            weight = weight.reshape(weight.shape[0], *chw).transpose(0, 2, 3, 1).reshape(weight.shape[0], -1)
        if bias is not None:
            bias = np.broadcast_to(np.asarray(bias, np.float32).reshape(-1), (weight.shape[0],))
        self.builder.add_layer(node.output[0], name, op, LayerSpec(layer, "fully_connected", weight.shape[0],
                                                                    activation="linear"),
                               [node.input[0]], declared, weight, bias)

    def _flatten(self, node, attrs: dict) -> None:
        name, op = node.name or node.output[0], node.op_type
        in_shape = self.shape(node.input[0], name, op)
        out_shape = self.shape(node.output[0], name, op)
        if op == "Flatten" and attrs.get("axis", 1) != 1 or len(out_shape) != 2 or out_shape[1] != int(np.prod(in_shape[1:])):
            raise self.reject(node, f"only a flatten to [1, N] is supported, got {list(out_shape)}")
        if len(in_shape) == 4 and in_shape[2:] != (1, 1):
            self.flattened_from[node.output[0]] = tuple(in_shape[1:])
        self.builder.alias(node.output[0], node.input[0], name, op, flatten=len(in_shape) == 4 and in_shape[2:] != (1, 1))

    def _pad(self, node, attrs: dict) -> None:
        mode = attrs.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        pads = attrs["pads"] if "pads" in attrs else self.constant(node, node.input[1]).tolist()
        value = float(self.constant(node, node.input[2]).reshape(-1)[0]) if len(node.input) > 2 and node.input[2] else \
            float(attrs.get("value", 0.0))
        if mode != "constant" or value != 0.0:
            raise self.reject(node, f"{mode} padding with value {value:g} (only zero padding is supported)")
        if len(node.input) > 3 and node.input[3]:
            raise self.reject(node, "Pad with axes")
        if len(pads) != 8 or any(pads[k] for k in (0, 1, 4, 5)):
            raise self.reject(node, f"pads {list(pads)}: only H and W of an N x C x H x W tensor")
        self.builder.add_pad(node.name or node.output[0], "Pad", node.input[0], node.output[0],
                             (int(pads[2]), int(pads[3]), int(pads[6]), int(pads[7])))

    def _clip(self, node, attrs: dict) -> str:
        low = attrs.get("min", float(self.constant(node, node.input[1])) if len(node.input) > 1 and node.input[1] else None)
        high = attrs.get("max", float(self.constant(node, node.input[2])) if len(node.input) > 2 and node.input[2] else None)
        if (low, high) != (0.0, 6.0):
            raise self.reject(node, f"Clip({low}, {high}): only Clip(0, 6) (ReLU6) is supported")
        return "relu6"

    def _weighted_layer(self, node, tensor: str) -> str:
        """The conv / fully connected layer whose output `tensor` is, read only by `node`."""
        b = self.builder
        layer = b.layer_of(tensor, node.name or node.output[0], node.op_type)
        spec = next((spec for spec in b.specs if spec.name == layer), None)
        if spec is None or not spec.has_weights or spec.activation != "linear" or self.consumers.get(tensor, 0) != 1:
            raise self.reject(node, "must directly follow a conv or fully connected layer that nothing else reads")
        return layer

    def _batch_norm(self, node, attrs: dict) -> None:
        layer = self._weighted_layer(node, node.input[0])
        gamma, beta, mean, var = (self.constant(node, name).astype(np.float64) for name in node.input[1:5])
        scale = gamma / np.sqrt(var + attrs.get("epsilon", 1e-5))
        float_layer = self.builder.weights[layer]
        op = next(spec.op for spec in self.builder.specs if spec.name == layer)
        shape = (1, 1, -1) if op == "depthwise_conv2d" else (-1,) + (1,) * (float_layer.weight.ndim - 1)
        float_layer.weight = (float_layer.weight * scale.reshape(shape)).astype(np.float32)
        float_layer.bias = ((float_layer.bias - mean) * scale + beta).astype(np.float32)
        self.builder.alias(node.output[0], node.input[0], node.name or node.output[0], node.op_type)

    def _bias_add(self, node) -> None:
        """Add of a constant after MatMul / Gemm / Conv: folded into that layer's bias."""
        tensor, constant = (node.input[0], node.input[1]) if node.input[1] in self.constants else (node.input[1], node.input[0])
        layer = self._weighted_layer(node, tensor)
        float_layer = self.builder.weights[layer]
        values = self.constant(node, constant).astype(np.float32).reshape(-1)
        if values.size not in (1, float_layer.bias.size):
            raise self.reject(node, f"a constant of shape {list(self.constants[constant].shape)} added: only a per-channel bias")
        float_layer.bias = float_layer.bias + values
        self.builder.alias(node.output[0], tensor, node.name or node.output[0], node.op_type)
