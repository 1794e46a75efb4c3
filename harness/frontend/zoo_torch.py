"""Zoo architectures as torch modules, and user checkpoints (state_dicts) lowered to the IR.

`ZooNet(arch)` is the float network of any zoo architecture, residual ones included: each
convolution is `layers.<name>.0` (Conv2d, no bias) + `layers.<name>.1` (BatchNorm2d); a hidden
fully connected layer is `layers.<name>.0` (Linear) + `layers.<name>.1` (BatchNorm1d); the
classifier is `layers.<name>` (Linear). Those are the state_dict keys a checkpoint must have
(`python -c "from harness.frontend.zoo_torch import ZooNet; from harness import zoo;
print(list(ZooNet(zoo.build('mlperf_ic_resnet8')).state_dict()))"` lists them). Activations
follow each spec (ReLU, ReLU6, linear); avg_pool counts padding as zeros, as the IR does.

A checkpoint is lowered without training (harness.quantize.ptq): batch-norm folded, weights and
requantization calibrated on integer inputs (images of an ImageFolder, or random inputs).
Not under harness/zoo/: that package is imported to validate policies, which must not load torch.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from harness.errors import HarnessError
from harness.ir.graph import Graph
from harness.quantize.lower import ir_layout
from harness.policy import Policy
from harness.frontend.float_graph import FloatLayer
from harness.quantize.ptq import lower_float
from harness.quantize.qat import fold_batch_norm
from harness.frontend.train import conv_module
from harness.zoo.architecture import CONV_OPS, Architecture

ACTIVATIONS = {"relu": F.relu, "relu6": lambda x: torch.clamp(x, 0.0, 6.0), "linear": lambda x: x}


class ZooNet(nn.Module):
    """The float model of an architecture; inputs NCHW in the real domain, output the logits."""

    def __init__(self, arch: Architecture):
        super().__init__()
        self.arch = arch
        in_channels, shapes = arch.input_channels(), arch.shapes()
        self.layers = nn.ModuleDict()
        for spec in arch.layers:
            if spec.op in CONV_OPS:
                conv = conv_module(spec, in_channels[spec.name], bias=False)
                self.layers[spec.name] = nn.Sequential(conv, nn.BatchNorm2d(conv.out_channels))
            elif spec.op == "fully_connected":
                linear = nn.Linear(in_channels[spec.name], shapes[spec.name][2])
                self.layers[spec.name] = linear if spec.name == arch.classifier else \
                    nn.Sequential(linear, nn.BatchNorm1d(linear.out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {"input": x}
        for spec in self.arch.layers:
            inputs = [values[source] for source in self.arch.sources(spec)]
            if spec.op in CONV_OPS:
                y = self.layers[spec.name](inputs[0])
            elif spec.op == "fully_connected":
                y = self.layers[spec.name](inputs[0].flatten(1))
            elif spec.op == "global_avg_pool":
                y = inputs[0].mean(dim=(2, 3), keepdim=True)
            elif spec.op == "avg_pool":
                y = F.avg_pool2d(inputs[0], spec.kernel_hw, spec.stride_hw, spec.symmetric_padding, count_include_pad=True)
            else:  # add
                y = inputs[0] + inputs[1]
            values[spec.name] = y if spec.name == self.arch.classifier else ACTIVATIONS[spec.activation](y)
        return values[self.arch.classifier]


def load_checkpoint(arch: Architecture, path: str | Path) -> ZooNet:
    """A ZooNet with the state_dict saved at `path` (or under its "state_dict" key), in eval mode."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except IsADirectoryError:
        raise HarnessError(f"{path}: cannot load checkpoint: is a directory, not a checkpoint file") from None
    except FileNotFoundError:
        raise HarnessError(f"{path}: cannot load checkpoint: no such file") from None
    except Exception as error:  # noqa: BLE001 - torch's unpickler fails on text or garbage in any way
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise HarnessError(f"{path}: cannot load checkpoint: not a torch state_dict ({first[:200]})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise HarnessError(f"{path}: not a state_dict")
    net = ZooNet(arch)
    expected = net.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        raise HarnessError(f"{path}: does not match {arch.name}: missing {missing[:3]}{'...' if len(missing) > 3 else ''}"
                           f", unexpected {unexpected[:3]}{'...' if len(unexpected) > 3 else ''}")
    try:
        net.load_state_dict(state)
    except RuntimeError as error:
        raise HarnessError(f"{path}: does not match {arch.name}: {str(error).splitlines()[-1].strip()}") from None
    return net.eval()


@torch.no_grad()
def float_layers(net: ZooNet) -> dict[str, FloatLayer]:
    """Batch-norm folded float weights of every weighted layer, in the IR layout."""
    result = {}
    for spec in net.arch.layers:
        if not spec.has_weights:
            continue
        block = net.layers[spec.name]
        weight, bias = (block.weight.detach(), block.bias.detach()) if isinstance(block, nn.Linear) else \
            fold_batch_norm(block[0], block[1])
        result[spec.name] = FloatLayer(ir_layout(spec, weight.double().numpy()), bias.double().numpy())
    return result


def checkpoint_graph(policy: Policy, net: ZooNet, calibration: np.ndarray, source: str) -> Graph:
    """The integer graph of a float network, calibrated on integer inputs [N, H, W, C]."""
    meta = {"model": policy.model.zoo, "model_args": policy.model.args, "checkpoint": source,
            "calibration_inputs": int(len(calibration)), "torch": torch.__version__}
    return lower_float(policy, float_layers(net), calibration, meta)


def real_inputs(policy: Policy, inputs: np.ndarray) -> torch.Tensor:
    """Integer inputs [N, H, W, C] as the float network sees them: (q - z) * s, NCHW."""
    q = policy.input
    return torch.from_numpy(((inputs.astype(np.float64) - q.zero_point) * q.scale).astype(np.float32)).permute(0, 3, 1, 2)
