"""Channel-wise mixed precision by differentiable search (after Risso et al. 2022).

Every output channel of a conv2d or fully connected layer has logits over the precisions
{0, 2, 4, 8} bits (0 = pruned); channels linked through channel-preserving ops (depthwise, add,
pools: one component, harness.ir.channel_order) share one set of logits, so the producers of a
residual add always agree. The components of the network input and output keep every channel
(no 0 bits), and the classifier, whose int32 logits share one scale, has one set of logits for
the whole layer (layer-wise 2, 4 or 8 bits). With theta = softmax(logits / tau), the layer's
effective weight is sum_b theta_b * FQ_b(W) (FQ_0 = 0, each at the clip ratios QAT calibrates at
b bits) and its bias is scaled by 1 - theta_0.
tau is annealed geometrically from tau_start to tau_end over the epochs. The cost is the
expected weight flash (weights at their bits plus 9 parameter bytes per kept channel; or, with
cost "weights", the weights alone), an exact expectation: a layer's bytes are
sum_c E[bits_c] * taps * E[kept input channels] / 8, the two factors independent (different
components), so a pruned channel also shrinks every consumer.
The loss on the logits' split is cross-entropy + strength * E[bytes] / bytes(all 8 bits), plus
latency strength * E[ticks] / ticks(all 8 bits) when asked for (the board's measured table,
harness.search.channelwise_latency), plus a steep penalty above the hard budget when one is
given. Weights (and activation clips) train on one half of the training split, logits on the
other (each class halved at random: `halves`), alternately. Activations stay layer-wise, fixed
by the starting policy. At the end each channel takes its most probable precision (a
channel-less layer keeps its most likely channel), and the policy is written; the normal QAT
fine-tune, lowering, build and measurement follow (`harness evaluate / build / measure`).

The search logs one JSON line per epoch to DIR/search.jsonl and saves its state to
DIR/state.pt after every epoch: started again with the same DIR, settings, data and search code
it continues.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from harness.errors import HarnessError
from harness.ir.channel_order import CHANNEL_PRESERVING, architecture_components, fixed_components
from harness.policy import Policy, parse_policy
from harness.zoo.architecture import INPUT, Architecture

PRECISIONS = (0, 2, 4, 8)
PARAM_BYTES = 4 + 4 + 1  # bias, mult, shift per kept output channel (harness.ir.graph.Graph.param_bytes)
LOG_NAME = "search.jsonl"
STATE_NAME = "state.pt"
POLICY_NAME = "policy.json"
COSTS = ("flash", "weights")  # weights + parameters, or the weights alone
OVER_BUDGET_PENALTY = 10.0  # per unit of relative excess over the hard budget
_CODE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


@dataclass(frozen=True)
class ChannelwiseSettings:
    epochs: int = 6
    strength: float = 1.0
    latency_strength: float = 0.0  # weight of E[ticks] / ticks(all 8 bits), from the board's table
    weight_budget: int | None = None  # a hard limit on the bytes `cost` counts
    cost: str = "flash"  # what the bytes count: "flash" (weights + parameters) or "weights"
    tau_start: float = 5.0
    tau_end: float = 0.2
    lr: float = 1e-3
    logit_lr: float = 0.05
    seed: int = 0

    def check(self) -> None:
        if self.epochs < 1:
            raise HarnessError(f"--epochs must be at least 1, got {self.epochs}")
        if self.strength < 0:
            raise HarnessError(f"--strength must not be negative, got {self.strength}")
        if self.latency_strength < 0:
            raise HarnessError(f"--latency-strength must not be negative, got {self.latency_strength}")
        if self.weight_budget is not None and self.weight_budget <= 0:
            raise HarnessError(f"--weight-budget must be positive, got {self.weight_budget}")
        if self.cost not in COSTS:
            raise HarnessError(f"--cost must be one of {', '.join(COSTS)}, got {self.cost!r}")
        if not 0 < self.tau_end <= self.tau_start:
            raise HarnessError(f"temperatures must satisfy 0 < end <= start, got {self.tau_start} -> {self.tau_end}")

    def temperature(self, epoch: int) -> float:
        if self.epochs == 1:
            return self.tau_end
        return self.tau_start * (self.tau_end / self.tau_start) ** (epoch / (self.epochs - 1))


def searchable(arch: Architecture) -> dict[str, str]:
    """Searchable layer -> its component: every conv2d and fully connected layer."""
    comp = architecture_components(arch)
    return {spec.name: comp[spec.name] for spec in arch.layers if spec.op in ("conv2d", "fully_connected")}


def layer_wise(arch: Architecture) -> set[str]:
    """The components searched with one precision for all their channels: the classifier's."""
    return {architecture_components(arch)[arch.classifier]}


class Mixture:
    """The logits of every component and what a QuantLayer asks of them (theta, mixed weights)."""

    def __init__(self, arch: Architecture, components: dict[str, str], no_prune: set[str] = frozenset(),
                 shared: set[str] = frozenset()):
        import torch

        self.components = components
        self.no_prune = set(no_prune)
        self.shared = set(shared)  # one row of logits for all channels
        channels = {spec.name: spec.out_channels for spec in arch.layers}
        self.logits = torch.nn.ParameterDict()
        for layer, root in components.items():
            if root not in self.logits:
                init = torch.zeros(1 if root in self.shared else channels[layer], len(PRECISIONS))
                init[:, -1] = 1.0  # start leaning to 8 bits: the float model's accuracy
                self.logits[root] = torch.nn.Parameter(init)
        self.tau = 1.0
        self.clips: dict[str, dict[int, object]] = {}  # layer -> bits -> clip ratios at those bits

    def attach(self, net) -> None:
        """Make the searchable layers of a QATNet use the mixture, each precision with the clip
        ratios QAT would calibrate at those bits (minimum squared error for the current weights):
        a 2-bit candidate is judged as QAT would deploy it, not at the 8-bit clip."""
        from harness.quantize.qat import best_clip_ratio

        for name in self.components:
            layer = net.layers[name]
            layer.mixture = self
            rows = layer.weight.detach().reshape(layer.clip_ratio.numel(), -1)
            self.clips[name] = {bits: best_clip_ratio(rows, -qmax, qmax)
                                for bits in PRECISIONS if bits and (qmax := (1 << (bits - 1)) - 1)}

    @classmethod
    def of(cls, arch: Architecture) -> "Mixture":
        """The search's mixture: every searchable layer, the no-pruning and layer-wise components set."""
        return cls(arch, searchable(arch), fixed_components(arch), layer_wise(arch))

    def theta(self, root: str):
        import torch

        logits = self.logits[root] / self.tau
        if root in self.no_prune:  # 0 bits impossible: its probability is exactly 0
            logits = torch.cat([torch.full_like(logits[:, :1], float("-inf")), logits[:, 1:]], dim=1)
        return logits.softmax(dim=1)

    def weight(self, layer):
        """sum_b theta_b * FQ_b(W) per output channel (FQ_0 = 0), straight-through rounding,
        FQ_b at b bits' own clip ratios (attach)."""
        import torch

        from harness.quantize.qat import weight_scale

        theta = self.theta(self.components[layer.spec.name])
        per_row = [1] * (layer.weight.dim() - 1)
        zero_points = torch.zeros(layer.weight.shape[0], dtype=torch.int32)
        mixed = torch.zeros_like(layer.weight)
        for k, bits in enumerate(PRECISIONS):
            if bits == 0:
                continue
            qmax = (1 << (bits - 1)) - 1
            scale_b = weight_scale(layer.weight, qmax, self.clips[layer.spec.name][bits])
            quantized = torch.fake_quantize_per_channel_affine(layer.weight, scale_b, zero_points, 0, -qmax, qmax)
            mixed = mixed + theta[:, k].reshape(-1, *per_row) * quantized
        return mixed

    def keep(self, layer):
        """1 - theta_0 per output channel: the expected bias."""
        return 1.0 - self.theta(self.components[layer.spec.name])[:, 0]

    def choice(self) -> dict[str, list[int]]:
        """Each component's most probable precision per channel (at least one channel kept)."""
        result = {}
        for root, logits in self.logits.items():
            logits = logits.detach().clone()
            if root in self.no_prune:
                logits[:, 0] = float("-inf")
            best = logits.argmax(dim=1).tolist()
            if all(PRECISIONS[k] == 0 for k in best):
                channel = int(logits.detach()[:, 1:].max(dim=1).values.argmax())
                best[channel] = int(logits.detach()[channel, 1:].argmax()) + 1
            result[root] = [PRECISIONS[k] for k in best]
        return result


def expected_channels(arch: Architecture, mixture: Mixture) -> dict:
    """E[kept output channels] of the network input and of every layer under theta (torch scalars):
    a searched layer's from its theta, a channel-preserving layer's its source's, the rest all."""
    import torch

    shapes = arch.shapes()
    kept = {INPUT: torch.tensor(float(shapes[INPUT][2]))}
    for spec in arch.layers:
        if spec.name in mixture.components:
            root = mixture.components[spec.name]
            rows = shapes[spec.name][2] if root in mixture.shared else 1  # channels one row of theta stands for
            kept[spec.name] = (1.0 - mixture.theta(root)[:, 0]).sum() * rows
        elif spec.op in CHANNEL_PRESERVING:
            kept[spec.name] = kept[arch.sources(spec)[0]]
        else:
            kept[spec.name] = torch.tensor(float(shapes[spec.name][2]))
    return kept


def expected_bytes(arch: Architecture, policy: Policy, mixture: Mixture, parameters: bool = True):
    """E[weight bytes (+ parameter bytes)] of the network under theta (a torch scalar)."""
    import torch

    shapes = arch.shapes()
    kept, bits_sum = expected_channels(arch, mixture), {}
    total = torch.tensor(0.0)
    for spec in arch.layers:
        source = arch.sources(spec)[0]
        if spec.name in mixture.components:
            root = mixture.components[spec.name]
            theta = mixture.theta(root)
            rows = shapes[spec.name][2] if root in mixture.shared else 1
            bits_sum[spec.name] = (theta * torch.tensor(PRECISIONS, dtype=theta.dtype)).sum() * rows
        if parameters:  # as the memory model counts them, for every layer
            total = total + kept[spec.name] * PARAM_BYTES
        if not spec.has_weights:
            continue
        kh, kw = spec.kernel_hw
        w_bits = policy.layers[spec.name].w_bits
        if spec.op == "depthwise_conv2d":
            weights = kept[spec.name] * (kh * kw * w_bits / 8)
        else:
            taps = kh * kw if spec.op == "conv2d" else shapes[source][0] * shapes[source][1]
            out_bits = bits_sum.get(spec.name, kept[spec.name] * w_bits)
            weights = out_bits * taps * kept[source] / 8
        total = total + weights
    return total


def channelwise_document(policy: Policy, choice: dict[str, list[int]], components: dict[str, str], name: str) -> dict:
    """The starting policy with every searchable layer's per-channel bits."""
    document = json.loads(json.dumps(policy.document))
    document["name"] = name
    for layer, root in components.items():
        bits = choice[root]
        document.setdefault("layers", {}).setdefault(layer, {})["w_bits"] = bits if len(set(bits)) > 1 else bits[0]
    return document


def search(start: Policy, settings: ChannelwiseSettings, out_dir: Path, images: np.ndarray, labels: np.ndarray,
           float_graph, on_epoch: Callable[[dict], None] = lambda record: None,
           on_step: Callable[[int, int], None] = lambda done, total: None, lines: dict | None = None) -> Policy:
    """Search per-channel weight bits from the layer-wise policy `start` (its activations kept),
    training on `images` (the network's real inputs, NHWC) and labels; returns the channel-wise
    policy (also DIR/policy.json). With a latency strength, `lines` are the board's
    (harness.search.channelwise_latency.latency_lines of the start policy's graph)."""
    import torch
    from torch import nn

    from harness.frontend.train import BATCH_SIZE, configure_torch, nchw
    from harness.quantize.qat import from_float_graph

    settings.check()
    if settings.latency_strength and lines is None:
        raise HarnessError("a latency strength needs the board's latency lines (harness profile --runs)")
    if any(bits.channel_wise for bits in start.layers.values()):
        raise HarnessError(f"policy {start.name} is channel-wise already: start from a layer-wise policy")
    arch = start.architecture
    out_dir.mkdir(parents=True, exist_ok=True)
    identity = {"start": start.hash, "settings": asdict(settings), "code": code_digest(), "images": int(len(images)),
                "data": hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()[:16],
                "latency": None if not settings.latency_strength else hashlib.sha256(
                    json.dumps({k: asdict(v) for k, v in lines.items()}, sort_keys=True).encode()).hexdigest()[:16]}
    configure_torch(settings.seed)
    net = from_float_graph(float_graph, start, nchw(images))
    mixture = Mixture.of(arch)
    mixture.attach(net)
    weights_opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
    logits_opt = torch.optim.Adam(mixture.logits.parameters(), lr=settings.logit_lr)
    generator = torch.Generator().manual_seed(settings.seed)
    parameters = settings.cost == "flash"
    first_epoch = _resume(out_dir, identity, net, mixture, (weights_opt, logits_opt), generator)
    with torch.no_grad():  # the costs' scales: every searchable channel at 8 bits
        reference_bytes = float(expected_bytes(arch, start, _all_eight(mixture), parameters))
        reference_ticks = float(_latency(arch, _all_eight(mixture), lines)) if lines else None
    weights_part, logits_part = halves(np.asarray(labels), settings.seed)
    x, y = nchw(images), torch.tensor(np.asarray(labels), dtype=torch.int64)
    splits = ((x[weights_part], y[weights_part]), (x[logits_part], y[logits_part]))
    half = len(weights_part)
    loss_fn = nn.CrossEntropyLoss()
    steps = -(-half // BATCH_SIZE)
    for epoch in range(first_epoch, settings.epochs):
        mixture.tau = settings.temperature(epoch)
        orders = [torch.randperm(len(s[0]), generator=generator) for s in splits]
        net.train()
        totals = {"loss": 0.0, "cost": 0.0}
        for step in range(steps):
            batches = [order[step * BATCH_SIZE:(step + 1) * BATCH_SIZE] for order in orders]
            (wx, wy), (lx, ly) = splits
            weights_opt.zero_grad()
            loss_fn(net(wx[batches[0]]), wy[batches[0]]).backward()
            weights_opt.step()
            logits_opt.zero_grad()
            cost = expected_bytes(arch, start, mixture, parameters)
            loss = loss_fn(net(lx[batches[1]]), ly[batches[1]]) + settings.strength * cost / reference_bytes
            if settings.latency_strength:
                ticks = _latency(arch, mixture, lines)
                loss = loss + settings.latency_strength * ticks / reference_ticks
                totals["ticks"] = totals.get("ticks", 0.0) + float(ticks.detach()) / steps
            if settings.weight_budget is not None:
                loss = loss + OVER_BUDGET_PENALTY * torch.relu(cost / settings.weight_budget - 1.0)
            loss.backward()
            logits_opt.step()
            totals["loss"] += float(loss.detach()) / steps
            totals["cost"] += float(cost.detach()) / steps
            on_step(step + 1, steps)
        net.eval()
        with torch.no_grad():
            accuracy = float((net(splits[1][0]).argmax(dim=1) == splits[1][1]).float().mean())
        record = {"epoch": epoch + 1, "tau": mixture.tau, "loss": totals["loss"], "expected_bytes": totals["cost"],
                  "reference_bytes": reference_bytes, "accuracy_logit_split": accuracy,
                  "expected_ticks": totals.get("ticks"), "reference_ticks": reference_ticks,
                  "choice": mixture.choice()}
        with (out_dir / LOG_NAME).open("a") as log:
            log.write(json.dumps(record) + "\n")
        torch.save({"identity": identity, "epoch": epoch + 1, "net": net.state_dict(),
                    "logits": mixture.logits.state_dict(), "weights_opt": weights_opt.state_dict(),
                    "logits_opt": logits_opt.state_dict(), "generator": generator.get_state()},
                   out_dir / STATE_NAME)
        on_epoch(record)
    document = channelwise_document(start, mixture.choice(), mixture.components, f"{start.name}-channelwise")
    latency = f"latency strength {settings.latency_strength}, " if settings.latency_strength else ""
    document["description"] = (f"channel-wise weight bits found by `harness search --method channelwise` "
                               f"(strength {settings.strength}, cost {settings.cost}, {latency}"
                               f"budget {settings.weight_budget}, "
                               f"{settings.epochs} epochs, seed {settings.seed}) from policy {start.name}")
    (out_dir / POLICY_NAME).write_text(json.dumps(document, indent=1) + "\n")
    return parse_policy(document, source=str(out_dir / POLICY_NAME), base_dir=out_dir)


def halves(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the weights' and the logits' halves of the training images: every class split
    in two at random (seeded), so both halves hold every class whatever the images' order (the
    MNIST split comes sorted by class)."""
    rng = np.random.default_rng(seed)
    first, second = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        first.append(members[: len(members) // 2])
        second.append(members[len(members) // 2:])
    return np.sort(np.concatenate(first)), np.sort(np.concatenate(second))


def _latency(arch: Architecture, mixture: Mixture, lines: dict):
    from harness.search.channelwise_latency import expected_latency

    return expected_latency(arch, mixture, expected_channels(arch, mixture), lines)


def code_digest() -> str:
    """The digest of this module's source as imported (an edit while a search runs does not
    change it): a search state made by other search code is not resumed."""
    return _CODE_DIGEST


def _all_eight(mixture: Mixture) -> Mixture:
    """A copy of the mixture whose theta is all 8 bits (the cost's reference)."""
    import copy

    import torch

    reference = copy.copy(mixture)
    reference.logits = torch.nn.ParameterDict(
        {root: torch.nn.Parameter(torch.nn.functional.one_hot(torch.full((len(v),), len(PRECISIONS) - 1),
                                                               len(PRECISIONS)).float() * 1e3)
         for root, v in mixture.logits.items()})
    reference.tau = 1.0
    return reference


def _resume(out_dir: Path, identity: dict, net, mixture: Mixture, optimizers, generator) -> int:
    """Load DIR/state.pt when it belongs to this search; the epoch to continue from."""
    import torch

    path = out_dir / STATE_NAME
    if not path.is_file():
        return 0
    state = torch.load(path, weights_only=False)
    if state["identity"] != identity:
        raise HarnessError(f"{out_dir} holds another search (other start policy, settings, data or search code); "
                          f"use a new --out")
    net.load_state_dict(state["net"])
    mixture.logits.load_state_dict(state["logits"])
    for optimizer, key in zip(optimizers, ("weights_opt", "logits_opt")):
        optimizer.load_state_dict(state[key])
    generator.set_state(state["generator"])
    return int(state["epoch"])
