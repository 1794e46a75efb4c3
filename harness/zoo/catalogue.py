"""The standard variants of the zoo and the counts their papers or reference code publish.

`harness models` lists these; tests compare the computed counts with `published`. A published
figure is (parameters, MACs, source); None where the source gives none.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.zoo.mobilenet import MOBILENET_V1_RESOLUTIONS, MOBILENET_V1_WIDTHS, MOBILENET_V2_WIDTHS


@dataclass(frozen=True)
class Variant:
    zoo: str
    args: dict = field(default_factory=dict)
    published: tuple[float | None, float | None, str] | None = None  # (params, MACs, source)

    @property
    def label(self) -> str:
        return " ".join([self.zoo, *(str(value) for value in self.args.values())])


_PAPER_V1 = "Howard et al. 2017"
_MLPERF = "MLPerf Tiny reference (weights)"
PUBLISHED = {
    ("mobilenet_v1", 1.0, 224): (4.2e6, 569e6, _PAPER_V1),
    ("mobilenet_v1", 0.75, 224): (2.6e6, 325e6, _PAPER_V1 + " (TF-slim lists 317M)"),
    ("mobilenet_v1", 0.5, 224): (1.3e6, 149e6, _PAPER_V1),
    ("mobilenet_v1", 0.25, 224): (0.5e6, 41e6, _PAPER_V1),
    ("mobilenet_v1", 1.0, 192): (4.2e6, 418e6, _PAPER_V1),
    ("mobilenet_v1", 1.0, 160): (4.2e6, 290e6, _PAPER_V1),
    ("mobilenet_v1", 1.0, 128): (4.2e6, 186e6, _PAPER_V1),
    ("mobilenet_v2", 1.0, 224): (3.4e6, 300e6, "Sandler et al. 2018"),
    ("mobilenet_v2", 0.35, 224): (1.7e6, 59e6, "Sandler et al. 2018"),
}


def variants() -> list[Variant]:
    """Every listed configuration: the MobileNetV1 grid, MobileNetV2 widths at 224, the digits CNN,
    MNasNet-B1, the MLPerf Tiny networks."""
    result = [Variant("mobilenet_v1", {"width": w, "resolution": r}, PUBLISHED.get(("mobilenet_v1", w, r)))
              for w in MOBILENET_V1_WIDTHS for r in MOBILENET_V1_RESOLUTIONS]
    result += [Variant("mobilenet_v2", {"width": w, "resolution": 224}, PUBLISHED.get(("mobilenet_v2", w, 224)))
               for w in MOBILENET_V2_WIDTHS]
    result += [
        Variant("digits-cnn", {}, None),
        Variant("mnasnet", {"width": 1.0, "resolution": 224}, (4.38e6, 312e6, "torchvision mnasnet1_0")),
        Variant("mlperf_ic_resnet8", {}, (78e3, 12.5e6, _MLPERF)),
        Variant("mlperf_vww_mobilenet", {}, (208e3, 7.5e6, _MLPERF)),
        Variant("mlperf_kws_dscnn", {}, (22e3, 2.7e6, _MLPERF)),
        Variant("mlperf_ad_autoencoder", {}, (270e3, 264e3, "MLPerf Tiny reference")),
    ]
    return result
