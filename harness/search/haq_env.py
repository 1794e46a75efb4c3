"""The HAQ environment (Wang et al. 2019): one step per layer, the agent picks that layer's bits.

State of step i, HAQ's layer embedding (each feature min-max scaled over the layers to [0, 1],
as HAQ does): layer index, op (one-hot over the zoo's ops; HAQ's depthwise flag), input
channels, output channels, kernel size, stride, input feature map size (H * W), params, and the
previous action (two values). The action is two numbers in [0, 1]: the layer's weight bits and
the bits of its output activation, each mapped to {2, 4, 8} by thirds (a weightless layer ignores
the first, the classifier, whose output is int32 logits, the second). The last step scores the
whole policy through `score(w_bits, a_bits) -> (reward, info)`, which also enforces the memory
budget (harness.search.constraints); the search gives that reward to every step of the episode
(harness.search.haq.run_agent), so the steps before return 0 here.
"""
from __future__ import annotations

from typing import Callable

import gymnasium as gym
import numpy as np

from harness.zoo.architecture import SPEC_OPS, Architecture

BIT_CHOICES = (2, 4, 8)
N_FEATURES = 1 + len(SPEC_OPS) + 6 + 2

Score = Callable[[dict[str, int], dict[str, int]], tuple[float, dict]]


def action_to_bits(value: float) -> int:
    """[0, 1/3) -> 2, [1/3, 2/3) -> 4, [2/3, 1] -> 8."""
    return BIT_CHOICES[min(len(BIT_CHOICES) - 1, max(0, int(float(value) * len(BIT_CHOICES))))]


def layer_features(architecture: Architecture) -> np.ndarray:
    """[layers, N_FEATURES - 2] static features, each column min-max scaled to [0, 1] (a constant one is 0)."""
    shapes = architecture.shapes()
    in_channels = architecture.input_channels()
    rows = []
    for index, spec in enumerate(architecture.layers):
        cin, cout = in_channels[spec.name], shapes[spec.name][2]
        kh, kw = spec.kernel_hw
        params = {"conv2d": cout * cin * kh * kw, "depthwise_conv2d": cout * kh * kw,
                  "fully_connected": cout * cin}.get(spec.op, 0)
        one_hot = [float(spec.op == op) for op in SPEC_OPS]
        h, w = shapes[architecture.sources(spec)[0]][:2]
        rows.append([index, *one_hot, cin, cout, kh, spec.stride_hw[0], h * w, params])
    features = np.array(rows, dtype=np.float64)
    low, span = features.min(axis=0), np.ptp(features, axis=0)
    return ((features - low) / np.where(span > 0, span, 1.0)).astype(np.float32)


class BitWidthEnv(gym.Env):
    """One episode = one policy: a step per layer of `architecture`."""

    metadata = {"render_modes": []}

    def __init__(self, architecture: Architecture, score: Score):
        super().__init__()
        self.architecture = architecture
        self.score = score
        self.features = layer_features(architecture)
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(N_FEATURES,), dtype=np.float32)
        self.action_space = gym.spaces.Box(0.0, 1.0, shape=(2,), dtype=np.float32)
        self._index = 0
        self._previous = np.ones(2, dtype=np.float32)
        self._w_bits: dict[str, int] = {}
        self._a_bits: dict[str, int] = {}

    def _observation(self) -> np.ndarray:
        return np.concatenate([self.features[self._index], self._previous]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._index = 0
        self._previous = np.ones(2, dtype=np.float32)
        self._w_bits, self._a_bits = {}, {}
        return self._observation(), {}

    def step(self, action):
        action = np.clip(np.asarray(action, dtype=np.float32).reshape(2), 0.0, 1.0)
        spec = self.architecture.layers[self._index]
        self._w_bits[spec.name] = action_to_bits(action[0])
        self._a_bits[spec.name] = action_to_bits(action[1])
        self._previous = action
        self._index += 1
        if self._index < len(self.architecture.layers):
            return self._observation(), 0.0, False, False, {}
        reward, info = self.score(dict(self._w_bits), dict(self._a_bits))
        self._index -= 1  # the terminal observation repeats the last layer's features
        return self._observation(), float(reward), True, False, info
