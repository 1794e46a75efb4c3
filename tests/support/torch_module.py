"""A small user CNN written as a PyTorch module (a residual add, a max pool, a 5x3 kernel, ReLU6,
batch norm), and its export to ONNX exactly as docs/models.md tells users to do it."""
from pathlib import Path

import torch
from torch import nn

INPUT_SHAPE = (1, 3, 16, 12)  # N, C, H, W


class UserNet(nn.Module):
    def __init__(self, classes: int = 4):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, kernel_size=(5, 3), padding=(2, 1))
        self.stem_bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.body = nn.Conv2d(8, 8, 3, padding=1)
        self.body_bn = nn.BatchNorm2d(8)
        self.head = nn.Linear(8 * 4 * 3, classes)

    def forward(self, x):
        x = self.pool(nn.functional.relu6(self.stem_bn(self.stem(x))))
        x = torch.relu(self.body_bn(self.body(x)) + x)  # residual add
        return self.head(torch.flatten(nn.functional.max_pool2d(x, 2), 1))


def export(net: nn.Module, path: Path) -> Path:
    """The documented export: eval mode (batch norm folded into the convs), batch 1, the
    TorchScript exporter (dynamo=False: readable node names, no onnxscript needed)."""
    torch.onnx.export(net.eval(), (torch.zeros(INPUT_SHAPE),), str(path), dynamo=False)
    return path
