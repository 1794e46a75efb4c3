"""Write small float TFLite flatbuffers with the `tflite` package's builder functions, so tests can
feed the importer operators and attributes no vendored model has (PAD, MEAN, MAX_POOL_2D,
dilation, depth multipliers). The TFLite interpreter runs them, which checks they are valid."""
from dataclasses import dataclass, field

import flatbuffers
import numpy as np
import tflite

FLOAT32, INT32 = 0, 2


@dataclass
class TFLiteModel:
    """Tensors (name, shape, constant data or None) and operators (op name, inputs, outputs, options)."""

    tensors: list = field(default_factory=list)
    operators: list = field(default_factory=list)

    def tensor(self, name: str, shape, data: np.ndarray | None = None) -> int:
        self.tensors.append((name, list(shape), data))
        return len(self.tensors) - 1

    def op(self, name: str, inputs: list[int], outputs: list[int], options: tuple[str, dict] | None = None) -> None:
        self.operators.append((name, inputs, outputs, options))

    def serialize(self, inputs: list[int], outputs: list[int]) -> bytes:
        b = flatbuffers.Builder(1024)
        buffers = [_buffer(b, None)] + [_buffer(b, data) for _, _, data in self.tensors]
        tensors = []
        for k, (name, shape, data) in enumerate(self.tensors):
            name_offset = b.CreateString(name)
            shape_offset = _ints(b, tflite.TensorStartShapeVector, shape)
            tflite.TensorStart(b)
            tflite.TensorAddShape(b, shape_offset)
            tflite.TensorAddType(b, INT32 if data is not None and data.dtype == np.int32 else FLOAT32)
            tflite.TensorAddBuffer(b, k + 1)
            tflite.TensorAddName(b, name_offset)
            tensors.append(tflite.TensorEnd(b))
        kinds = sorted({name for name, *_ in self.operators})
        codes = []
        for kind in kinds:
            tflite.OperatorCodeStart(b)
            value = getattr(tflite.BuiltinOperator, kind)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(value, 127))
            tflite.OperatorCodeAddBuiltinCode(b, value)
            codes.append(tflite.OperatorCodeEnd(b))
        operators = []
        for kind, op_inputs, op_outputs, options in self.operators:
            options_offset = _options(b, *options) if options else None
            in_offset = _ints(b, tflite.OperatorStartInputsVector, op_inputs)
            out_offset = _ints(b, tflite.OperatorStartOutputsVector, op_outputs)
            tflite.OperatorStart(b)
            tflite.OperatorAddOpcodeIndex(b, kinds.index(kind))
            tflite.OperatorAddInputs(b, in_offset)
            tflite.OperatorAddOutputs(b, out_offset)
            if options:
                tflite.OperatorAddBuiltinOptionsType(b, getattr(tflite.BuiltinOptions, options[0]))
                tflite.OperatorAddBuiltinOptions(b, options_offset)
            operators.append(tflite.OperatorEnd(b))
        tensors_vec = _offsets(b, tflite.SubGraphStartTensorsVector, tensors)
        ops_vec = _offsets(b, tflite.SubGraphStartOperatorsVector, operators)
        in_vec = _ints(b, tflite.SubGraphStartInputsVector, inputs)
        out_vec = _ints(b, tflite.SubGraphStartOutputsVector, outputs)
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, tensors_vec)
        tflite.SubGraphAddOperators(b, ops_vec)
        tflite.SubGraphAddInputs(b, in_vec)
        tflite.SubGraphAddOutputs(b, out_vec)
        subgraph = tflite.SubGraphEnd(b)
        codes_vec = _offsets(b, tflite.ModelStartOperatorCodesVector, codes)
        subgraphs_vec = _offsets(b, tflite.ModelStartSubgraphsVector, [subgraph])
        buffers_vec = _offsets(b, tflite.ModelStartBuffersVector, buffers)
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, codes_vec)
        tflite.ModelAddSubgraphs(b, subgraphs_vec)
        tflite.ModelAddBuffers(b, buffers_vec)
        b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def _ints(b, start, values) -> int:
    start(b, len(values))
    for value in reversed(values):
        b.PrependInt32(int(value))
    return b.EndVector()


def _offsets(b, start, offsets) -> int:
    start(b, len(offsets))
    for offset in reversed(offsets):
        b.PrependUOffsetTRelative(offset)
    return b.EndVector()


def _buffer(b, data: np.ndarray | None) -> int:
    data_offset = b.CreateByteVector(np.ascontiguousarray(data).tobytes()) if data is not None else None
    tflite.BufferStart(b)
    if data_offset is not None:
        tflite.BufferAddData(b, data_offset)
    return tflite.BufferEnd(b)


def _options(b, cls: str, fields: dict) -> int:
    getattr(tflite, f"{cls}Start")(b)
    for key, value in fields.items():
        getattr(tflite, f"{cls}Add{key}")(b, value)
    return getattr(tflite, f"{cls}End")(b)
