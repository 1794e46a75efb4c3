"""Make tests/data/samples/imagenet32/: the 20 ImageNet sample photos of the shared data folder
(foolbox 3.3.4, MIT), shrunk to 32 x 32 RGB with harness.datasets.imagefolder's preprocessing
(shorter side resized, centre crop). They calibrate CIFAR-10 models post-training on natural
images that are not the measured CIFAR-10 samples. Run once by hand when vendoring:

    python tests/data/make_imagenet32.py /path/to/samples/imagenet
"""
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from harness.datasets.imagefolder import load_image

OUT = Path(__file__).resolve().parent / "samples" / "imagenet32"


def main(source: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for path in sorted(Path(source).glob("imagenet_*.jpg")):
        pixels = np.rint(load_image(path, (32, 32, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(OUT / f"{path.stem}.png", optimize=True)


if __name__ == "__main__":
    main(sys.argv[1])
