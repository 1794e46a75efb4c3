"""Policy documents a search writes: one model, the bits it chose, the budget it searched under."""
from __future__ import annotations

from harness.policy import Policy, parse_policy
from harness.zoo.architecture import Architecture

DEFAULT_INPUT = {"bits": 8, "range": [-1.0, 1.0]}


def policy_document(name: str, zoo_name: str, args: dict, architecture: Architecture,
                    w_bits: dict[str, int | list[int]], a_bits: dict[str, int], budget: dict,
                    input_quant: dict | None = None, qat: dict | None = None, description: str = "") -> dict:
    """A policy.json document for a zoo model (the layers as `layer_entries` writes them)."""
    document = {"name": name, "model": {"zoo": zoo_name, "args": dict(args)},
                "input": dict(input_quant or DEFAULT_INPUT), "layers": layer_entries(architecture, w_bits, a_bits),
                "budget": dict(budget)}
    if description:
        document["description"] = description
    if qat:
        document["qat"] = dict(qat)
    return document


def layer_entries(architecture: Architecture, w_bits: dict[str, int], a_bits: dict[str, int]) -> dict:
    """The `layers` of a policy: every layer gets the bits its kind has (no w_bits for weightless
    layers, no a_bits for the classifier, whose logits are int32)."""
    layers = {}
    for spec in architecture.layers:
        entry = {}
        if spec.has_weights:
            bits = w_bits[spec.name]
            entry["w_bits"] = [int(b) for b in bits] if isinstance(bits, (list, tuple)) else int(bits)
        if spec.name != architecture.classifier:
            entry["a_bits"] = int(a_bits[spec.name])
        layers[spec.name] = entry
    return layers


def uniform_policy(name: str, zoo_name: str, args: dict, architecture: Architecture, bits: int, budget: dict,
                   **extra) -> Policy:
    """Every weight and activation at `bits`."""
    every = {spec.name: bits for spec in architecture.layers}
    return parse_policy(policy_document(name, zoo_name, args, architecture, every, every, budget, **extra))
