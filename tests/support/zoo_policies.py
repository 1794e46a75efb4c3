"""Policies of zoo models for tests: every tensor at 8 bits, or a fixed mixed pattern."""
from __future__ import annotations

from harness import zoo
from harness.policy import Policy, parse_policy
from harness.search.documents import policy_document

BUDGET = {"flash": "2MB", "ram": "512kB"}
MIXED_WEIGHTS = (8, 4, 2)  # layer i's weights; its output: MIXED_ACTIVATIONS[i % 3]
MIXED_ACTIVATIONS = (4, 8, 2)


def int8_policy(model: str, args: dict) -> Policy:
    arch = zoo.build(model, args)
    bits = {spec.name: 8 for spec in arch.layers}
    return parse_policy(policy_document(f"{model}-int8", model, args, arch, bits, bits, BUDGET))


def mixed_policy(model: str, args: dict) -> Policy:
    """Weights 8/4/2 and activations 4/8/2 in turn, layer by layer: every pair of bits meets."""
    arch = zoo.build(model, args)
    w_bits = {spec.name: MIXED_WEIGHTS[i % 3] for i, spec in enumerate(arch.layers)}
    a_bits = {spec.name: MIXED_ACTIVATIONS[i % 3] for i, spec in enumerate(arch.layers)}
    return parse_policy(policy_document(f"{model}-mixed", model, args, arch, w_bits, a_bits, BUDGET))
