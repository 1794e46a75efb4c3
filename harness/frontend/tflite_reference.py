"""Predictions of a TFLite file by the TFLite interpreter itself (ai-edge-litert, the optional
`reference` extra), with the reference kernels (OpResolverType.BUILTIN_REF, not XNNPACK): the
cross-check of `harness evaluate --reference`. A float model reads the real inputs; a quantized
one reads them quantized with its own input scale and zero-point.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


class ReferenceUnavailable(Exception):
    """Why the reference interpreter cannot run (the message goes into the report)."""


def reference_outputs(model: Path, real_inputs: np.ndarray) -> np.ndarray:
    """Outputs [N, ...] of the TFLite interpreter for real-valued inputs [N, H, W, C] (or [N, features])."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        raise ReferenceUnavailable("ai-edge-litert is not installed (pip install 'mpq-harness[reference]')") from None
    try:
        interpreter = Interpreter(model_path=str(model), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as error:
        raise ReferenceUnavailable(f"{model.name}: the interpreter refused it: {str(error).splitlines()[0]}") from None
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero_point = inp["quantization"]
    outputs = []
    for x in real_inputs:
        x = np.asarray(x, np.float32).reshape(inp["shape"])
        if inp["dtype"] != np.float32:
            info = np.iinfo(inp["dtype"])
            x = np.clip(np.rint(x / scale) + zero_point, info.min, info.max)
        interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]))
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(out["index"]).reshape(-1).copy())
    return np.stack(outputs)
