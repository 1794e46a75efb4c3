"""The HAQ must-shows under budgets that bind: HAQ against random search, and the latency weight.

Two experiments, each a set of searches (harness.search.haq.search) with the same number of
episodes per run. HAQ against random search is compared at equal episodes and at equal
evaluations: the distinct policies scored (a repeated policy's accuracy comes from the oracle's
cache and costs nothing), random search's best over as many as HAQ scored.

- mnist: lenet5-mnist on the mnist data at --mnist-flash / --mnist-ram (the all-8-bit policy
  fits neither), per seed: HAQ at latency weight 0, random search at weight 0, HAQ at
  --raised-weight. Accuracy: post-training calibration (--finetune-epochs 0) or a short QAT, on
  the 5k MNIST images' split (the oracle's score is cached per policy, shared by every run).
- mnist-latency: the latency weight alone, HAQ at weight 0 and at --raised-weight per seed, at
  --latency-flash / --latency-ram (default: the mnist budget): under the tightest budgets every
  feasible policy runs at about the same speed, so the weight has nothing to choose from; a
  budget with more room shows what it changes.
- mobilenet: MobileNetV1 0.75/224 with random weights at 2 MB / 512 kB, latency and memory only
  (reward = -latency / all-8-bit latency), per seed: HAQ and random search.

Latency during the search comes from the board's measured per-layer table (profiled once);
only each run's chosen policies and the all-8-bit reference are built and measured on the board.
Writes results/haq-mnist.json, results/haq-mnist-latency.json, results/haq-mobilenet.json
(every run, the comparisons) and results/haq-reward-curves.png (best reward so far per
episode and per evaluation); docs/search.md's blocks come from them (tools/docs.py), each with the command that
made its file.

    python tools/haq_experiments.py --experiments mnist --episodes 3 --warmup 1 --seeds 0 \\
        --out-dir /tmp/r --runs-dir /tmp/runs                                       # a bounded run (tests)
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EXPERIMENTS = ("mnist", "mnist-latency", "mobilenet")
VERSUS_RANDOM = ("mnist", "mobilenet")  # the experiments that race HAQ against random search
MNIST_MODELS = ("lenet5-mnist", "dsnet-mnist")
MOBILENET = {"model": "mobilenet_v1", "model_args": {"width": 0.75, "resolution": 224}, "random_weights": True}
BUDGET_SHARE = 0.9  # the chosen policy must use at least this share of every budget that binds


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS), choices=EXPERIMENTS)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--raised-weight", type=float, default=2.0)
    parser.add_argument("--mnist-model", default=MNIST_MODELS[0], choices=MNIST_MODELS)
    parser.add_argument("--mnist-flash", default="100kB")
    parser.add_argument("--mnist-ram", default="34kB")
    parser.add_argument("--latency-flash", help="flash budget of mnist-latency (default: --mnist-flash)")
    parser.add_argument("--latency-ram", help="RAM budget of mnist-latency (default: --mnist-ram)")
    parser.add_argument("--finetune-epochs", type=int, default=0)
    parser.add_argument("--mnist-images", type=int, default=50, help="test images per measured MNIST policy")
    parser.add_argument("--mnist-val-images", type=int, default=500, help="validation images scoring a policy "
                        "(the mnist split has 500)")
    parser.add_argument("--board", default="qemu-m7")
    parser.add_argument("--curves-only", action="store_true",
                        help="only redraw the reward-curve PNG from the results files in --out-dir")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "results")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "haq-experiments")
    return parser.parse_args(argv)


def runs_of(experiment: str, args: argparse.Namespace) -> list[dict]:
    """(settings fields) of every search of `experiment`."""
    if experiment in ("mnist", "mnist-latency"):
        base = {"model": args.mnist_model, "model_args": {}, "data": "mnist", "flash": args.mnist_flash,
                "ram": args.mnist_ram, "finetune_epochs": args.finetune_epochs, "verify_images": args.mnist_images,
                "val_images": args.mnist_val_images}
        plan = [("haq", 0.0), ("random", 0.0), ("haq", args.raised_weight)]
        if experiment == "mnist-latency":  # its own runs: a search folder holds one budget
            base |= {"flash": args.latency_flash or args.mnist_flash, "ram": args.latency_ram or args.mnist_ram,
                     "tag": "-latency"}
            plan = [("haq", 0.0), ("haq", args.raised_weight)]
    else:
        base = MOBILENET | {"flash": "2MB", "ram": "512kB", "verify_images": 1}
        plan = [("haq", 1.0), ("random", 1.0)]
    return [base | {"method": method, "latency_weight": weight, "seed": seed}
            for seed in args.seeds for method, weight in plan]


def run_one(fields: dict, args: argparse.Namespace, board) -> dict:
    """One search; the figures the results file keeps of it."""
    from harness.search.accuracy import ShortQAT
    from harness.search.haq import HaqSettings, search

    settings = HaqSettings(fields["model"], fields["model_args"], fields["flash"], fields["ram"], args.board,
                           args.episodes, fields["latency_weight"], None, fields["seed"], top_k=1,
                           verify_images=fields["verify_images"], method=fields["method"], data=fields.get("data"),
                           finetune_epochs=fields.get("finetune_epochs", 0),
                           val_images=fields.get("val_images", ShortQAT.val_images),
                           random_weights=fields.get("random_weights", False), warmup=args.warmup)
    name = f"{settings.model}-{settings.method}-w{settings.latency_weight:g}-s{settings.seed}{fields.get('tag', '')}"
    started = time.monotonic()
    summary = search(settings, args.runs_dir / name, board)
    best = summary["best"]
    records = [json.loads(line) for line in (args.runs_dir / name / "search.jsonl").read_text().splitlines()]
    chosen = next(r for r in records if r["event"] == "episode" and r["policy_hash"] == best["policy_hash"])
    return {"name": name, "method": settings.method, "seed": settings.seed,
            "latency_weight": settings.latency_weight, "episodes": summary["episodes"],
            "best_episode_reward": summary["best_episode_reward"],
            "best_so_far": _best_so_far(summary["rewards"]), "policy_hash": best["policy_hash"],
            "accuracy": best["accuracy"], "device_accuracy": best["device_accuracy"],
            "bit_exact": best["bit_exact"], "images": best["images"],
            "predicted_latency": best["predicted_latency"], "measured_latency": best["measured_latency"],
            "reward_measured": best["reward_measured"], "flash_bytes": chosen["flash_bytes"],
            "ram_bytes": chosen["ram_bytes"], "elf_flash_bytes": best["elf_flash_bytes"],
            "elf_ram_bytes": best["elf_ram_bytes"], "fits": best["fits"], "layers": chosen["layers"],
            "distinct_policies": len({r["policy_hash"] for r in records if r["event"] == "episode"}),
            "best_per_evaluation": _best_per_evaluation([r for r in records if r["event"] == "episode"]),
            "fastest_predicted": min(r["predicted_latency"] for r in records if r["event"] == "episode"),
            "reference": summary["reference"], "seconds": round(time.monotonic() - started, 1)}


def _best_per_evaluation(episodes: list[dict]) -> list[float]:
    """Best reward after each distinct policy scored: a repeated policy costs no evaluation (its
    accuracy comes from the oracle's cache), so this is the curve against the search's real cost."""
    first_scores: dict[str, float] = {}
    for record in episodes:
        first_scores.setdefault(record["policy_hash"], record["reward"])
    return _best_so_far(list(first_scores.values()))  # dicts keep the order policies were first scored


def _best_so_far(rewards: list[float]) -> list[float]:
    best, curve = float("-inf"), []
    for reward in rewards:
        best = max(best, reward)
        curve.append(best)
    return curve


def budget_use(run: dict, flash: int, ram: int, binding: dict[str, bool]) -> dict:
    """Share of each budget the chosen policy uses (memory model), and whether every binding one is >= 90 %."""
    shares = {"flash": run["flash_bytes"] / flash, "ram": run["ram_bytes"] / ram}
    return {"shares": shares, "binding": binding,
            "meets": all(shares[kind] >= BUDGET_SHARE for kind, binds in binding.items() if binds)}


def cheapest_raise(run: dict, fields: dict, flash: int, ram: int, board) -> dict | None:
    """Why a chosen policy leaves flash free: every raise of one layer's weight bits that still
    fits the budget, predicted on the board's latency table; the one that costs least (None: no
    raise fits). A positive cost means every use of the free flash makes the policy slower."""
    from harness import zoo
    from harness.ir.memory import memory_report
    from harness.measure.profile import profile
    from harness.policy import parse_policy
    from harness.quantize.lower import structural_graph
    from harness.search.documents import policy_document, uniform_policy

    arch = zoo.build(fields["model"], fields["model_args"])
    budget = {"flash": flash, "ram": ram}
    table, _ = profile(structural_graph(uniform_policy("all-8", fields["model"], fields["model_args"], arch, 8,
                                                       budget)), board)  # profiled by the searches: reads only
    w_bits = {name: entry["w_bits"] for name, entry in run["layers"].items() if "w_bits" in entry}
    a_bits = {name: entry["a_bits"] for name, entry in run["layers"].items() if "a_bits" in entry}

    def graph(weights: dict[str, int]):
        return structural_graph(parse_policy(policy_document("raise", fields["model"], fields["model_args"], arch,
                                                             weights, a_bits, budget)))

    chosen = table.predict(graph(w_bits))
    raises = []
    for name, bits in w_bits.items():
        for higher in (b for b in (4, 8) if b > bits):
            raised = graph(w_bits | {name: higher})
            report = memory_report(raised)
            if report.flash_bytes <= flash and report.ram_bytes <= ram:
                raises.append({"layer": name, "from": bits, "to": higher, "flash_bytes": report.flash_bytes,
                               "latency_change": table.predict(raised) - chosen})
    return min(raises, key=lambda r: r["latency_change"]) if raises else None


def binding_budget(fields: dict) -> tuple[int, int, object, dict[str, bool]]:
    """The budget in bytes, the all-8-bit policy's memory report, and which budgets it exceeds."""
    from harness import zoo
    from harness.ir.memory import memory_report
    from harness.quantize.lower import structural_graph
    from harness.search.documents import uniform_policy
    from harness.units import parse_size

    flash, ram = parse_size(fields["flash"]), parse_size(fields["ram"])
    arch = zoo.build(fields["model"], fields["model_args"])
    all_8 = memory_report(structural_graph(uniform_policy("all-8", fields["model"], fields["model_args"], arch, 8,
                                                          {"flash": flash, "ram": ram})))
    return flash, ram, all_8, {"flash": all_8.flash_bytes > flash, "ram": all_8.ram_bytes > ram}


def compare(experiment: str, runs: list[dict], fields: dict, args: argparse.Namespace, board) -> dict:
    """HAQ vs random per seed (mnist, mobilenet); the latency weight's effect against the seed
    spread (mnist, mnist-latency)."""
    flash, ram, all_8, binding = binding_budget(fields)
    result = {"flash_budget": flash, "ram_budget": ram, "all_8_flash_bytes": all_8.flash_bytes,
              "all_8_ram_bytes": all_8.ram_bytes, "binding": binding}
    by = {(r["method"], r["latency_weight"], r["seed"]): r for r in runs}
    if experiment in VERSUS_RANDOM:
        result |= versus_random(by, 0.0 if experiment == "mnist" else 1.0, fields, args, board, (flash, ram), binding)
    if experiment in ("mnist", "mnist-latency"):
        result["latency_weight"] = latency_effect(by, runs, args)
    return result


def versus_random(by: dict, base_weight: float, fields: dict, args: argparse.Namespace, board,
                  budget: tuple[int, int], binding: dict[str, bool]) -> dict:
    """Per seed, HAQ's best reward against random search's, at the same episodes and evaluations."""
    flash, ram = budget
    versus = []
    for seed in args.seeds:
        haq, rand = by[("haq", base_weight, seed)], by[("random", base_weight, seed)]
        evaluations = haq["distinct_policies"]  # random search held to as many scored policies as HAQ
        random_at = rand["best_per_evaluation"][min(evaluations, len(rand["best_per_evaluation"])) - 1]
        versus.append({"seed": seed, "haq": haq["best_episode_reward"], "random": rand["best_episode_reward"],
                       "haq_measured": haq["reward_measured"], "random_measured": rand["reward_measured"],
                       "haq_wins": haq["best_episode_reward"] > rand["best_episode_reward"],
                       "evaluations": evaluations, "random_at_evaluations": random_at,
                       "haq_wins_at_evaluations": haq["best_episode_reward"] > random_at,
                       "budget": budget_use(haq, flash, ram, binding)})
        if fields.get("random_weights"):  # latency only: does the free flash buy anything?
            versus[-1]["cheapest_raise"] = cheapest_raise(haq, fields, flash, ram, board)
    return {"haq_vs_random": versus, "haq_wins_every_seed": all(v["haq_wins"] for v in versus),
            "haq_wins_every_seed_at_evaluations": all(v["haq_wins_at_evaluations"] for v in versus),
            "budget_met_every_seed": all(v["budget"]["meets"] for v in versus)}


def latency_effect(by: dict, runs: list[dict], args: argparse.Namespace) -> dict:
    """HAQ's measured latency at weight 0 and at the raised weight, against the seed spread at 0."""
    low = [by[("haq", 0.0, s)]["measured_latency"] for s in args.seeds]
    high = [by[("haq", args.raised_weight, s)]["measured_latency"] for s in args.seeds]
    spread = max(low) - min(low)
    drop = statistics.mean(low) - statistics.mean(high)
    return {"raised": args.raised_weight, "weight_0": low, "raised_latencies": high,
            # the room the weight has: the fastest policy any run of the set scored
            "fastest_predicted": min(r["fastest_predicted"] for r in runs),
            "spread_at_0": spread, "mean_drop": drop, "drops_more_than_spread": drop > spread,
            "every_raised_faster": max(high) < min(low), "all_fit": all(r["fits"] for r in runs)}


def reward_curves(results: dict[str, dict], path: Path) -> None:
    """Best reward so far of HAQ and random search, every seed: per episode (top row) and per
    evaluation, i.e. distinct policy scored (bottom row), one column per experiment."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    results = {experiment: result for experiment, result in results.items() if experiment in VERSUS_RANDOM}
    if not results:
        return
    figure, axes = plt.subplots(2, len(results), figsize=(5.5 * len(results), 7.5), squeeze=False)
    for column, (experiment, result) in enumerate(results.items()):
        weight = 0.0 if experiment == "mnist" else 1.0
        reward = "validation accuracy" if experiment == "mnist" else "-latency / all-8-bit's"
        for row, (key, unit) in enumerate((("best_so_far", "episode"),
                                           ("best_per_evaluation", "evaluation (distinct policy scored)"))):
            axis = axes[row][column]
            for run in (r for r in result["runs"] if r["latency_weight"] == weight):
                axis.plot(range(1, len(run[key]) + 1), run[key], color="C0" if run["method"] == "haq" else "C1",
                          alpha=0.8, linestyle="-" if run["method"] == "haq" else "--",
                          label=f"{run['method']} seed {run['seed']}")
            axis.set_title(f"{result['model']} at {result['budget']} (latency weight {weight:g})", fontsize=9)
            axis.set_xlabel(unit)
            axis.set_ylabel(f"best reward so far ({reward})", fontsize=8)
            axis.grid(alpha=0.3)
            axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def saved_results(out_dir: Path) -> dict[str, dict]:
    """The results files of the experiments already in out_dir, by experiment."""
    paths = {experiment: out_dir / f"haq-{experiment}.json" for experiment in EXPERIMENTS}
    return {experiment: json.loads(path.read_text()) for experiment, path in paths.items() if path.is_file()}


def main(argv: list[str] | None = None) -> int:
    from harness.errors import HarnessError, one_line

    try:
        return run_experiments(argv)
    except HarnessError as error:  # e.g. a budget the model cannot meet: runs already done are in their files
        print(f"error: {one_line(str(error))}", file=sys.stderr)
        return 2


def run_experiments(argv: list[str] | None) -> int:
    from harness.backends import load_board
    from harness.measure.provenance import provenance

    args = parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    results = saved_results(args.out_dir)  # the curves show every experiment's file, run now or before
    if args.curves_only:
        reward_curves(results, args.out_dir / "haq-reward-curves.png")
        return 0
    board = load_board(args.board)
    for experiment in args.experiments:
        plan = runs_of(experiment, args)
        fields = plan[0]
        result = {"provenance": provenance(board) | {
                      "command": "python tools/haq_experiments.py " + " ".join(argv or sys.argv[1:]),
                      "episodes": args.episodes, "warmup": args.warmup, "seeds": args.seeds},
                  "model": fields["model"], "model_args": fields["model_args"],
                  "budget": f"{fields['flash']} / {fields['ram']}", "runs": [], "complete": False}
        results[experiment] = result
        for run in plan:  # the file is rewritten after every run: an interrupted set keeps what it ran
            result["runs"].append(run_one(run, args, board))
            done = result["runs"][-1]
            print(f"{done['name']}: best reward {done['best_episode_reward']:.4f}, measured latency "
                  f"{done['measured_latency']:,.0f} ({done['seconds']} s)", flush=True)
            if len(result["runs"]) == len(plan):
                result |= compare(experiment, result["runs"], fields, args, board) | {"complete": True}
            (args.out_dir / f"haq-{experiment}.json").write_text(json.dumps(result, indent=1) + "\n")
            reward_curves(results, args.out_dir / "haq-reward-curves.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
