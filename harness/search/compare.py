"""Layer-wise against channel-wise weight bits: accuracy x weight bytes over seeds, and a Pareto plot.

`harness search --method pareto --out results` runs, for each seed (the QAT seed, and the
channel-wise search's seed):
- layer-wise, memory-driven: the rules of Rusci et al. 2020 (harness.search.memory_driven) at
  flash budgets that force weights from all 8 bits down step by step;
- layer-wise, HAQ: `harness.search.haq` (latency weight 0: the most accurate policy it finds
  within the flash budget, first and last layer at 8 bits) at the smallest of those budgets that
  its pinned layers leave feasible, a bounded number of episodes each, latency profiled and the
  chosen policy checked on `board`;
- channel-wise: `harness.search.channelwise` at several strengths, from the all-8-bit policy,
  its cost the weight bytes alone (`cost="weights"`): the quantity the comparison is made on
  (the layer-wise policies' parameter bytes never change, and a cost that also counted them
  would trade accuracy for parameters the comparison does not see);
then QAT fine-tunes every policy (the same epochs for all) and scores the integer reference on
the test split. It writes results/channelwise-pareto-<data>.json (every point, the per-policy
means, the comparison, the seeds completed) and the PNG next to it, rewritten after every point. The comparison: T = the best layer-wise mean
accuracy minus 0.5 pp; the fewest weight bytes of a layer-wise and of a channel-wise policy whose
mean accuracy reaches T; the reduction is 1 - channel-wise / layer-wise.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from harness.errors import HarnessError
from harness.ir.memory import memory_report
from harness.policy import Policy, parse_policy
from harness.quantize.lower import structural_graph
from harness.search.documents import uniform_policy

EQUAL_ACCURACY = 0.005  # 0.5 percentage points


@dataclass(frozen=True)
class Experiment:
    model: str = "digits-cnn"
    data: str = "digits"
    seeds: tuple[int, ...] = (0, 1, 2)
    weight_fractions: tuple[float, ...] = (1.0, 0.75, 0.55, 0.4, 0.3, 0.26)  # of the 8-bit weight bytes
    strengths: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
    search_epochs: int = 3
    qat_epochs: int = 4
    ram: str = "512kB"
    haq_episodes: int = 0  # 0: no HAQ points
    haq_budgets: int = 2  # HAQ at this many of the smallest weight_fractions it can meet
    board: str = "qemu-m7"  # where HAQ profiles latency and checks its policy


def _with_qat(policy: Policy, name: str, epochs: int, seed: int) -> Policy:
    document = json.loads(json.dumps(policy.document)) | {"name": name, "qat": {"epochs": epochs, "lr": 1e-3, "seed": seed}}
    return parse_policy(document)


def flash_budget(experiment: Experiment, fraction: float) -> int:
    """Code, parameters and `fraction` of the all-8-bit weight bytes."""
    from harness import zoo

    eight = uniform_policy("8bit", experiment.model, {}, zoo.build(experiment.model, {}), 8,
                           {"flash": "2MB", "ram": experiment.ram})
    report = memory_report(structural_graph(eight))
    return report.code_bytes + report.param_bytes + int(report.weight_bytes * fraction)


def layerwise_policies(experiment: Experiment) -> list[Policy]:
    """Distinct memory-driven policies for flash budgets of fractions of the 8-bit weight bytes."""
    from harness.search.memory_driven import search

    policies, seen = [], set()
    for fraction in experiment.weight_fractions:
        flash = flash_budget(experiment, fraction)
        try:
            result = search(experiment.model, {}, flash, experiment.ram, name=f"memory-driven-{fraction:g}")
        except HarnessError:  # below what 2-bit weights everywhere reach
            continue
        bits = json.dumps(result.policy.document["layers"], sort_keys=True)
        if bits not in seen:
            seen.add(bits)
            policies.append(result.policy.with_data(experiment.data))
    return policies


def haq_fractions(experiment: Experiment) -> list[float]:
    """The `haq_budgets` smallest weight fractions whose flash budget HAQ can meet with its first
    and last layer pinned at 8 bits (every other weight at 2 bits fits)."""
    from harness import zoo
    from harness.policy import Budget
    from harness.search.haq import check_budget
    from harness.units import parse_size

    if not experiment.haq_episodes:
        return []
    arch = zoo.build(experiment.model, {})
    eight = uniform_policy("pinned", experiment.model, {}, arch, 8, {"flash": "2MB", "ram": experiment.ram})
    feasible = []
    for fraction in sorted(experiment.weight_fractions):
        try:
            check_budget(eight, arch, Budget(flash_budget(experiment, fraction), parse_size(experiment.ram)))
        except HarnessError:  # below what the pinned layers allow
            continue
        feasible.append(fraction)
    return feasible[:experiment.haq_budgets]


def haq_policy(experiment: Experiment, fraction: float, seed: int, work_dir: Path) -> Policy:
    """HAQ's best policy (latency weight 0) within the flash budget of `fraction`, RAM as the others."""
    from harness.backends import load_board
    from harness.policy import load_policy
    from harness.search.haq import HaqSettings, search

    settings = HaqSettings(model=experiment.model, model_args={}, flash=str(flash_budget(experiment, fraction)),
                           ram=experiment.ram, board=experiment.board, episodes=experiment.haq_episodes,
                           latency_weight=0.0, target_latency=None, seed=seed, top_k=1, data=experiment.data)
    summary = search(settings, work_dir / f"f{fraction:g}-seed{seed}", load_board(experiment.board))
    return load_policy(summary["policy"])


def score(policy: Policy) -> dict:
    """QAT fine-tune, lower, integer accuracy on the test split; memory of the deployed graph."""
    from harness.quantize.pipeline import evaluate

    evaluation, graph = evaluate(policy)
    report = memory_report(graph)
    return {"policy": policy.name, "policy_hash": policy.hash, "integer_accuracy": evaluation.integer_accuracy,
            "fake_quant_accuracy": evaluation.fake_quant_accuracy, "weight_bytes": report.weight_bytes,
            "param_bytes": report.param_bytes, "arena_bytes": report.arena_bytes, "layers": policy.document["layers"]}


def run(experiment: Experiment, out_dir: Path, work_dir: Path, on_point: Callable[[dict], None] = lambda p: None) -> dict:
    """Every point, the means and the comparison; writes the JSON and the PNG into out_dir."""
    from harness import zoo
    from harness.datasets.registry import model_split
    from harness.frontend.float_net import float_graph
    from harness.frontend.train import checkpoint_path, load_float
    from harness.search.channelwise import ChannelwiseSettings, code_digest, search

    points = []
    start = uniform_policy(f"{experiment.model}-8bit", experiment.model, {}, zoo.build(experiment.model, {}), 8,
                           {"flash": "2MB", "ram": experiment.ram}).with_data(experiment.data)
    split = model_split(start.architecture, start.data, start.preprocess)
    train_images = split.real(split.train_images, start.input)  # the network's real inputs
    graph = float_graph(load_float(start.model, data=start.data),
                        f"checkpoint {checkpoint_path(start.model, start.data)}")
    layerwise = layerwise_policies(experiment)
    haq_budgets = haq_fractions(experiment)
    stem = out_dir / f"channelwise-pareto-{experiment.data.split(':')[0]}"
    # resumable: a model's searches never meet another's, nor those of other search code
    searches = work_dir / f"{experiment.model}-{stem.name}-{code_digest()}"
    result: dict = {}

    def record(point: dict) -> None:  # results are rewritten after every point: a cut run keeps what it scored
        points.append(point)
        on_point(point)
        from harness.measure.provenance import provenance

        done = sorted({p["seed"] for p in points if _seed_done(points, p["seed"], experiment,
                                                                 len(layerwise) + len(haq_budgets))})
        complete = [p for p in points if p["seed"] in done] or points  # means over the completed seeds
        result.clear()
        result.update({"provenance": provenance(), "experiment": experiment.__dict__ | {"seeds": list(experiment.seeds)},
                       "seeds_completed": done, "points": points} | summarize(complete))
        out_dir.mkdir(parents=True, exist_ok=True)
        stem.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
        plot(result, stem.with_suffix(".png"))

    for seed in experiment.seeds:
        for policy in layerwise:
            record({"method": "layer-wise memory-driven", "seed": seed} | score(
                _with_qat(policy, policy.name, experiment.qat_epochs, seed)))
        for fraction in haq_budgets:
            found = haq_policy(experiment, fraction, seed, work_dir / f"{experiment.model}-{stem.name}-haq")
            record({"method": "layer-wise HAQ", "seed": seed, "fraction": fraction} | score(
                _with_qat(found, f"haq-{fraction:g}", experiment.qat_epochs, seed)))
        for strength in experiment.strengths:
            settings = ChannelwiseSettings(epochs=experiment.search_epochs, strength=strength, seed=seed, cost="weights")
            found = search(start, settings, searches / f"s{strength:g}-e{settings.epochs}-seed{seed}", train_images,
                           split.train_labels, graph)
            record({"method": "channel-wise", "seed": seed, "strength": strength} | score(
                _with_qat(found, f"channelwise-{strength:g}", experiment.qat_epochs, seed)))
    return result


def _seed_done(points: list[dict], seed: int, experiment: Experiment, layerwise: int) -> bool:
    return sum(1 for p in points if p["seed"] == seed) == layerwise + len(experiment.strengths)


def summarize(points: list[dict]) -> dict:
    """Means over seeds per (method, policy), and the comparison at equal accuracy."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for point in points:
        groups.setdefault((point["method"], point["policy"]), []).append(point)
    means = [{"method": method, "policy": name, "seeds": len(group),
              "integer_accuracy": float(np.mean([p["integer_accuracy"] for p in group])),
              "accuracy_std": float(np.std([p["integer_accuracy"] for p in group])),
              "weight_bytes": float(np.mean([p["weight_bytes"] for p in group])),
              "param_bytes": float(np.mean([p["param_bytes"] for p in group]))}
             for (method, name), group in groups.items()]
    layer = [m for m in means if m["method"].startswith("layer-wise")]
    channel = [m for m in means if m["method"] == "channel-wise"]
    if not layer:
        return {"means": means, "comparison": None}
    target = max(m["integer_accuracy"] for m in layer) - EQUAL_ACCURACY
    best_layer = min((m for m in layer if m["integer_accuracy"] >= target), key=lambda m: m["weight_bytes"])
    reaching = [m for m in channel if m["integer_accuracy"] >= target]
    best_channel = min(reaching, key=lambda m: m["weight_bytes"]) if reaching else None
    comparison = {"target_accuracy": target, "layerwise": best_layer, "channelwise": best_channel,
                  "reduction": None if best_channel is None else 1 - best_channel["weight_bytes"] / best_layer["weight_bytes"]}
    return {"means": means, "comparison": comparison}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(7.5, 4.5))
    for index, method in enumerate(dict.fromkeys(p["method"] for p in result["points"])):
        mine = [p for p in result["points"] if p["method"] == method]
        axes.scatter([p["weight_bytes"] for p in mine], [100 * p["integer_accuracy"] for p in mine], alpha=0.35,
                     color=f"C{index}", s=18)
        means = sorted((m for m in result["means"] if m["method"] == method), key=lambda m: m["weight_bytes"])
        axes.errorbar([m["weight_bytes"] for m in means], [100 * m["integer_accuracy"] for m in means],
                      yerr=[100 * m["accuracy_std"] for m in means], fmt="-o", color=f"C{index}", capsize=3,
                      label=f"{method} (mean of {means[0]['seeds']} seeds)")
    if result["comparison"] is not None:
        axes.axhline(100 * result["comparison"]["target_accuracy"], color="gray", linestyle=":",
                     label="best layer-wise − 0.5 pp")
    axes.set_xlabel("weight bytes (packed, flash)")
    axes.set_ylabel("integer accuracy on the test split (%)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
