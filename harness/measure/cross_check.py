"""`harness evaluate POLICY --data SPEC [--reference MODEL.tflite ...]`: on the test images of
the policy's data (e.g. a sample folder), the top-1 of our float graph, our integer graph (the host reference, which the device
matches bit for bit) and of each reference TFLite file run by the TFLite interpreter, and how
often our integer predictions agree with each reference's."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.datasets.registry import integer_test_set
from harness.frontend.float_forward import forward
from harness.frontend.importer import load_model_file
from harness.frontend.tflite_reference import ReferenceUnavailable, reference_outputs
from harness.ir import reference
from harness.ir.graph import Graph
from harness.policy import Policy


@dataclass
class Column:
    """One model's predictions on the images (None with `missing` saying why)."""

    name: str
    predictions: np.ndarray | None
    missing: str = ""

    def top1(self, labels: np.ndarray) -> int | None:
        return None if self.predictions is None else int(np.sum(self.predictions == labels))

    def agreement(self, other: "Column") -> int | None:
        if self.predictions is None or other.predictions is None:
            return None
        return int(np.sum(self.predictions == other.predictions))


@dataclass
class CrossCheck:
    images: int
    labels: np.ndarray
    ours: list[Column] = field(default_factory=list)
    references: list[Column] = field(default_factory=list)

    def to_dict(self) -> dict:
        integer = self.ours[-1]
        return {"images": self.images,
                "ours": [{"model": c.name, "top1": c.top1(self.labels)} for c in self.ours],
                "references": [{"model": c.name, "top1": c.top1(self.labels), "missing": c.missing or None,
                                "agreement_with_integer": integer.agreement(c)} for c in self.references]}


def cross_check(policy: Policy, graph: Graph, references: list[Path]) -> CrossCheck:
    """Our float and integer predictions and each reference's on the test images of the policy's
    data (e.g. a sample folder)."""
    _, inputs, labels = integer_test_set(policy)
    q = policy.input
    real = ((inputs.astype(np.float64) - q.zero_point) * q.scale).astype(np.float32)
    result = CrossCheck(len(labels), labels)
    if policy.model.file is not None:
        float_graph = load_model_file(policy.model.file)
        result.ours.append(Column("ours: float (imported)",
                                  np.array([forward(float_graph, x).argmax() for x in real])))
    result.ours.append(Column(f"ours: integer ({'post-training' if policy.model.file else 'QAT'}, host = device)",
                              np.array([reference.predict(graph, x).argmax() for x in inputs])))
    for path in references:
        try:
            outputs = reference_outputs(path, real)
            result.references.append(Column(f"TFLite {path.name}", outputs.argmax(axis=1)))
        except ReferenceUnavailable as why:
            result.references.append(Column(f"TFLite {path.name}", None, str(why)))
    return result
