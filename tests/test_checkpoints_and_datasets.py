"""User checkpoints (torch state_dicts) of zoo networks lowered without training, and
ImageFolder datasets read with PIL: the integer graph follows the float network, the images are
preprocessed the standard way, and bad input is a one-line error."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from support.zoo_policies import int8_policy

from harness.ir import reference
from harness.datasets import registry
from harness.datasets.imagefolder import Preprocess, load_image, scan_image_folder
from harness.errors import HarnessError
from harness.policy import parse_policy
from harness.frontend.float_net import FloatNet, float_graph, load_checkpoint, real_inputs
from harness.quantize.pipeline import checkpoint_meta, policy_graph
from harness.quantize.ptq import lower_float

CLASSES = ("cat", "dog", "emu")


@pytest.fixture
def image_folder(tmp_path):
    """Three classes of small images: odd sizes, PNG and JPEG, RGB and grey, plus a stray file."""
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for label, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for k in range(4):
            size = (int(rng.integers(20, 70)), int(rng.integers(20, 70)))
            pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
            image = Image.fromarray(pixels).convert("L" if k == 3 else "RGB")
            image.save(root / name / f"{k}.{'jpg' if k % 2 else 'png'}")
    (root / "cat" / "notes.txt").write_text("not an image")
    return root


def test_image_folder_lists_classes_and_images_in_order(image_folder):
    dataset = scan_image_folder(image_folder)
    assert dataset.num_classes == len(CLASSES) and len(dataset) == 12
    images, labels = dataset.images((32, 32, 3), Preprocess()), dataset.labels
    assert images.shape == (12, 32, 32, 3) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4


def test_preprocessing_resizes_the_short_side_and_crops_the_centre(tmp_path):
    """A 128x64 image, red inside its central 48x48 square and blue elsewhere: resized to 73x36
    (short side 32 / 0.875) and centre-cropped to 32x32, it is red in the middle, blue at the
    left and right edges."""
    pixels = np.zeros((64, 128, 3), dtype=np.uint8)
    pixels[..., 2] = 255
    pixels[8:56, 40:88] = (255, 0, 0)
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    image = load_image(tmp_path / "wide.png", (32, 32, 3))
    assert image.shape == (32, 32, 3)
    assert np.allclose(image[16, 16], (1, 0, 0), atol=0.01)
    assert image[16, 0, 2] > 0.9 and image[16, 31, 2] > 0.9
    grey = load_image(tmp_path / "wide.png", (24, 24, 1))
    assert grey.shape == (24, 24, 1)


def test_images_quantize_onto_the_policy_input_range():
    policy = int8_policy("mlperf_ic_resnet8", {})  # input range [-1, 1], 8 bits
    codes = registry.quantize_real(registry.real_images(np.array([0.0, 0.5, 1.0]), quant=policy.input), policy.input)
    assert codes.tolist() == [0, policy.input.zero_point, 254]  # real 1.0 is code 254.5: rounds to even


@pytest.mark.parametrize("make,message", [
    (lambda root: root / "missing", "no such dataset folder"),
    (lambda root: root, "no class folders"),
    (lambda root: (root / "a").mkdir() or root, "no images"),
])
def test_bad_image_folders_are_one_line_errors(tmp_path, make, message):
    with pytest.raises(HarnessError, match=message):
        scan_image_folder(make(tmp_path))


def test_unreadable_image_is_a_one_line_error(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(HarnessError, match="cannot read image"):
        scan_image_folder(tmp_path).images((8, 8, 3), Preprocess())


def _trained_looking(arch, seed: int = 0) -> FloatNet:
    """A FloatNet with random weights and non-trivial batch-norm statistics."""
    torch.manual_seed(seed)
    net = FloatNet(arch)
    for module in net.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.1, 0.1)
    return net.eval()


@pytest.mark.parametrize("model,args", [("mlperf_ic_resnet8", {}),
                                        ("mobilenet_v2", {"width": 0.35, "resolution": 32, "num_classes": 3})])
def test_checkpoint_lowered_with_image_calibration_follows_the_float_network(tmp_path, image_folder, model, args):
    """At 8 bits the integer graph's logits (dequantized) track the float network's: residual
    adds, zero-points, ReLU6 and average pooling all lower to what torch computes."""
    policy = int8_policy(model, args)
    torch.save(_trained_looking(policy.architecture).state_dict(), tmp_path / "model.pt")
    net = load_checkpoint(policy.architecture, tmp_path / "model.pt")
    images = scan_image_folder(image_folder).images(policy.architecture.input_shape, Preprocess())
    inputs = registry.quantize_real(registry.real_images(images, quant=policy.input), policy.input)
    graph = lower_float(policy, float_graph(net, "model.pt"), inputs[:6], checkpoint_meta(policy, "model.pt", 6))
    with torch.no_grad():
        expected = net(real_inputs(policy, inputs)).numpy()
    got = np.stack([reference.predict(graph, x).reshape(-1) for x in inputs]) * graph.tensors[graph.output].scale
    assert np.corrcoef(expected.ravel(), got.ravel())[0, 1] > 0.99
    assert (expected.argmax(axis=1) == got.argmax(axis=1)).mean() >= 0.9


def test_policy_with_a_checkpoint_of_a_zoo_network(tmp_path, image_folder, monkeypatch):
    monkeypatch.setenv("MPQ_HARNESS_CACHE", str(tmp_path / "cache"))
    document = json.loads(json.dumps(int8_policy("mlperf_ic_resnet8", {}).document))
    state = _trained_looking(int8_policy("mlperf_ic_resnet8", {}).architecture).state_dict()
    torch.save({"state_dict": state}, tmp_path / "resnet8.pt")
    document["model"]["checkpoint"] = "resnet8.pt"
    policy = parse_policy(document, base_dir=tmp_path)
    graph = policy_graph(policy, random_weights=False, calibration_dir=image_folder)
    assert graph.meta["calibration"] == str(image_folder) and not graph.meta.get("random_weights")
    assert policy_graph(policy, random_weights=False).meta["calibration"] == "seeded random inputs"
    for name in ("conv1", "s1_conv1", "s2_conv1"):  # the checkpoint's own weights reach the graph
        np.testing.assert_allclose(_lowered_weights(graph, name), _folded_int8(state, name), atol=1.0)


def _folded_int8(state: dict, name: str) -> np.ndarray:
    """A conv's checkpoint weights with its batch norm folded in, at 8 bits per output channel
    (symmetric, +-127 at the channel's largest magnitude): [out, in, kh, kw]."""
    w = state[f"layers.{name}.0.weight"].double().numpy()
    gamma, var = (state[f"layers.{name}.1.{key}"].double().numpy() for key in ("weight", "running_var"))
    folded = w * (gamma / np.sqrt(var + 1e-5))[:, None, None, None]
    return folded * 127 / np.abs(folded).reshape(len(folded), -1).max(axis=1)[:, None, None, None]


def _lowered_weights(graph, name: str) -> np.ndarray:
    layer = next(layer for layer in graph.layers if layer.name == name)
    return layer.weights.transpose(0, 3, 1, 2).astype(np.float64)  # [o][kh][kw][i] -> [o, i, kh, kw]


def test_mismatched_or_missing_checkpoints_are_one_line_errors(tmp_path):
    resnet = int8_policy("mlperf_ic_resnet8", {}).architecture
    torch.save(FloatNet(int8_policy("mlperf_kws_dscnn", {}).architecture).state_dict(), tmp_path / "kws.pt")
    with pytest.raises(HarnessError, match="does not match mlperf_ic_resnet8: missing"):
        load_checkpoint(resnet, tmp_path / "kws.pt")
    with pytest.raises(HarnessError, match="cannot load checkpoint"):
        load_checkpoint(resnet, tmp_path / "absent.pt")
    state = FloatNet(resnet).state_dict()
    state["layers.fc.weight"] = torch.zeros(3, 3)
    torch.save(state, tmp_path / "bad_shape.pt")
    with pytest.raises(HarnessError, match="does not match"):
        load_checkpoint(resnet, tmp_path / "bad_shape.pt")
