"""HAQ with hardware in the loop: a DDPG agent picks bits, the board's measured latency steers it.

An episode walks the layers (harness.search.haq_env); its policy is cut to the memory budget
(harness.search.constraints), its latency predicted from the board's measured per-layer table
(harness.measure.latency; `harness profile` fills it, and the search profiles what is missing first),
and its accuracy measured after a short QAT fine-tune (harness.search.accuracy). The reward is

    accuracy - latency_weight * latency_term,
    latency_term = predicted / predicted(all 8 bits)               without a target latency,
                 = max(0, predicted / target - 1)                   with one.

Every episode is appended to DIR/search.jsonl; the agent (weights, replay buffer) is saved to
DIR after each episode, so an interrupted search started again with the same DIR continues
where it stopped. At the end the K best policies by reward are built and measured end to end
on the board (harness.measure.run: bit-exact check, accuracy on the test split, latency), which is
logged too; the best measured one is written to DIR/policy.json with the Pareto table
(DIR/pareto.csv) and plot (DIR/pareto.png).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from collections.abc import Collection, Iterator
from typing import Callable

import numpy as np

from harness.boards import Board
from harness.errors import HarnessError
from harness.ir.memory import memory_report
from harness.measure.latency import LatencyTable
from harness.quantize.lower import structural_graph
from harness.policy import Budget, Policy, parse_policy
from harness.search.accuracy import AccuracyOracle, ShortQAT
from harness.search.constraints import enforce_budget, give_back_flash
from harness.search.documents import policy_document, uniform_policy
from harness.search.haq_agent import WARMUP_EPISODES, HaqAgent, RandomAgent, load_agent, save_agent
from harness.search.haq_env import BitWidthEnv
from harness.units import parse_size
from harness.zoo.architecture import INPUT, Architecture

LOG_NAME = "search.jsonl"
AGENT_NAME = "agent.pkl"
VERIFY_IMAGES = 50
METHODS = ("haq", "random")


@dataclass(frozen=True)
class HaqSettings:
    model: str
    model_args: dict
    flash: str
    ram: str
    board: str
    episodes: int
    latency_weight: float
    target_latency: float | None  # board units (harness.units.parse_latency reads "2.5ms" too)
    seed: int
    top_k: int
    verify_images: int = VERIFY_IMAGES
    method: str = "haq"
    data: str | None = None
    finetune_epochs: int = ShortQAT.epochs
    finetune_images: int = ShortQAT.train_images
    val_images: int = ShortQAT.val_images
    pin_ends: bool = True
    random_weights: bool = False
    warmup: int = WARMUP_EPISODES

    def check(self) -> None:
        from harness.quantize.pipeline import TRAINED_HERE

        if self.method not in METHODS:
            raise HarnessError(f"--method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.data:  # the mismatch first: it is the user's most direct mistake
            from harness import zoo
            from harness.datasets.registry import check_fits

            check_fits(self.data, zoo.build(self.model, self.model_args))
        if self.model not in TRAINED_HERE and not self.random_weights:
            raise HarnessError(f"haq scores accuracy by fine-tuning, and {self.model!r} has no training data here "
                               f"(trainable: {', '.join(TRAINED_HERE)}); add --random-weights to search for "
                               "latency and memory only, or use --method memory-driven")
        if self.random_weights and self.data:
            raise HarnessError("--random-weights scores no accuracy: --data has nothing to do")
        for name, value, least in (("--episodes", self.episodes, 1), ("--top-k", self.top_k, 1),
                                   ("--verify-images", self.verify_images, 1), ("--warmup", self.warmup, 0),
                                   ("--finetune-epochs", self.finetune_epochs, 0),
                                   ("--finetune-images", self.finetune_images, 1),
                                   ("--val-images", self.val_images, 1)):
            if value < least:
                raise HarnessError(f"{name} must be at least {least}, got {value}")
        if self.latency_weight < 0:
            raise HarnessError(f"--latency-weight must not be negative, got {self.latency_weight}")
        if self.target_latency is not None and self.target_latency <= 0:
            raise HarnessError(f"--target-latency must be positive, got {self.target_latency}")

    @property
    def fine_tune(self) -> ShortQAT:
        """The accuracy oracle's settings: its seed is fixed, so a policy scores the same in every
        search (and its cached score is shared by every seed and method)."""
        return ShortQAT(self.finetune_images, self.val_images, self.finetune_epochs)


def _identity(settings: dict) -> dict:
    """The settings a resumed search must share with the logged one (more episodes or
    candidates may be asked for)."""
    return {key: value for key, value in settings.items() if key not in ("episodes", "top_k", "verify_images")}


def read_log(path: Path) -> list[dict]:
    """The records of a search log; a half-written last line (a crash mid-write) is dropped."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records


def append(path: Path, record: dict) -> None:
    with open(path, "a") as log:
        log.write(json.dumps(record) + "\n")
        log.flush()
        os.fsync(log.fileno())


def pinned_ends(architecture: Architecture) -> tuple[set[str], set[str]]:
    """HAQ keeps the first and the last layer at 8 bits: (layers whose weights stay, activations that
    stay): the first and the classifier's weights and the classifier's input (the network input is
    fixed anyway)."""
    first, last = architecture.layers[0], architecture.layers[-1]
    weights = {spec.name for spec in (first, last) if spec.has_weights}
    return weights, set(architecture.sources(last)) - {INPUT}


def check_budget(policy: Policy, architecture: Architecture, budget: Budget, pin_ends: bool = True) -> None:
    """A one-line HarnessError when no policy meets `budget`, even at 2 bits everywhere but (with
    pin_ends) HAQ's pinned first and last layer: decided from memory alone, nothing is built."""
    keep_weights, keep_activations = pinned_ends(architecture) if pin_ends else (set(), set())
    enforce_budget(structural_graph(policy), budget, keep_weights, keep_activations)


class Scorer:
    """Turns an episode's bits into a fitted policy, its predicted latency, accuracy and reward."""

    def __init__(self, settings: HaqSettings, architecture: Architecture, table: LatencyTable,
                 oracle: AccuracyOracle | None, log_path: Path, first_episode: int,
                 on_episode: Callable[[dict], None]):
        self.settings = settings
        self.architecture = architecture
        self.table = table
        self.oracle = oracle  # None: random weights, no accuracy term
        self.log_path = log_path
        self.episode = first_episode
        self.on_episode = on_episode
        self.budget = Budget(parse_size(settings.flash), parse_size(settings.ram))
        self.pinned = pinned_ends(architecture) if settings.pin_ends else (set(), set())
        self.reference_policy = self.board_reference()
        self.reference_latency = table.predict(structural_graph(self.reference_policy))
        self.reference_measured: float | None = None  # the all-8-bit policy on the board, once measured

    def board_reference(self) -> Policy:
        """All 8 bits within the board's own budget (not the search's): where that does not fit
        (MobileNetV1 0.75/224's activations on 512 kB), cut as the search cuts, without pins."""
        from harness.backends import load_board

        board = load_board(self.settings.board).budget
        every = {spec.name: 8 for spec in self.architecture.layers}
        policy, *_ = self.fitted(every, every, board)
        return parse_policy(policy.document | {"budget": {"flash": board.flash, "ram": board.ram}})

    def fitted(self, w_bits: dict[str, int], a_bits: dict[str, int], budget: Budget,
               keep_weights: Collection[str] = (), keep_activations: Collection[str] = ()):
        """The policy of these bits cut to `budget`, then the flash left free given back where it
        costs no latency (harness.search.constraints), never changing the kept layers and tensors:
        (policy, its structural graph, memory report, number of cuts, number of raises)."""
        graph = structural_graph(self.policy(w_bits, a_bits))
        _, cuts = enforce_budget(graph, budget, keep_weights, keep_activations)
        raises = give_back_flash(graph, budget, self.table, keep_weights)
        report = memory_report(graph)
        policy = self.policy({layer.name: layer.w_bits for layer in graph.layers if layer.w_bits is not None},
                             {name: tensor.bits for name, tensor in graph.tensors.items()})
        return policy, graph, report, cuts, raises

    @property
    def budget_document(self) -> dict:
        return {"flash": self.settings.flash, "ram": self.settings.ram}

    def policy(self, w_bits: dict[str, int], a_bits: dict[str, int]) -> Policy:
        s = self.settings
        policy = parse_policy(policy_document(f"{s.model}-{s.method}", s.model, s.model_args, self.architecture,
                                              w_bits, a_bits, self.budget_document))
        return policy.with_data(s.data) if s.data else policy

    def logged_policy(self, layers: dict) -> Policy:
        """The policy of an episode record's "layers"."""
        return self.policy({name: entry["w_bits"] for name, entry in layers.items() if "w_bits" in entry},
                           {name: entry["a_bits"] for name, entry in layers.items() if "a_bits" in entry})

    def latency_term(self, latency: float, reference: float | None = None) -> float:
        """latency / the all-8-bit policy's (predicted, or the given measured one), or with a
        target, how far it is over the target."""
        target = self.settings.target_latency
        if target is None:
            return latency / (reference or self.reference_latency)
        return max(0.0, latency / target - 1.0)

    def reward(self, accuracy: float | None, latency: float, reference: float | None = None) -> float:
        return (accuracy or 0.0) - self.settings.latency_weight * self.latency_term(latency, reference)

    def accuracy(self, policy: Policy) -> tuple[float | None, bool]:
        return (None, False) if self.oracle is None else self.oracle.accuracy(policy)

    def evaluate(self, w_bits: dict[str, int], a_bits: dict[str, int]) -> dict:
        """One candidate: pin the ends, cut to the budget, predict latency, score accuracy and reward.
        Everything an episode record holds but its number; no side effects beyond the accuracy cache."""
        started = time.monotonic()
        keep_weights, keep_activations = self.pinned
        w_bits = w_bits | {name: 8 for name in keep_weights}
        a_bits = a_bits | {name: 8 for name in keep_activations}
        policy, graph, report, cuts, raises = self.fitted(w_bits, a_bits, self.budget, keep_weights,
                                                          keep_activations)
        predicted = self.table.predict(graph)
        accuracy, cached = self.accuracy(policy)
        return {"policy_hash": policy.hash, "layers": policy.document["layers"], "accuracy": accuracy,
                "predicted_latency": predicted, "latency_unit": self.table.unit,
                "reward": self.reward(accuracy, predicted), "flash_bytes": report.flash_bytes,
                "ram_bytes": report.ram_bytes, "budget_cuts": cuts, "weight_raises": raises, "accuracy_cached": cached,
                "seconds": round(time.monotonic() - started, 3)}

    def __call__(self, w_bits: dict[str, int], a_bits: dict[str, int]) -> tuple[float, dict]:
        record = {"event": "episode", "episode": self.episode} | self.evaluate(w_bits, a_bits)
        append(self.log_path, record)
        self.episode += 1
        self.on_episode(record)
        return record["reward"], record


def make_agent(settings: HaqSettings, env: BitWidthEnv) -> RandomAgent:
    n_actions = env.action_space.shape[0]
    if settings.method == "random":
        return RandomAgent(n_actions, settings.seed)
    return HaqAgent(env.observation_space.shape[0], n_actions, len(env.architecture.layers), settings.seed,
                    settings.warmup)


def run_agent(settings: HaqSettings, env: BitWidthEnv, out_dir: Path, done: int) -> None:
    """The episodes still to do: the agent walks the layers, the episode's reward goes to every
    step with the action the agent asked for there (as HAQ: asking for more than the budget holds
    is what earns the cut policy's reward); the agent is saved after every episode."""
    agent = make_agent(settings, env)
    agent_path = out_dir / AGENT_NAME
    load_agent(agent, agent_path)
    for episode in range(done, settings.episodes):
        state, _ = env.reset()
        states, actions, finished = [], [], False
        while not finished:
            action = agent.act(state, episode)
            states.append(state)
            actions.append(action)
            state, reward, finished, _, _ = env.step(action)
        agent.learn(states, actions, reward, episode)
        save_agent(agent, agent_path)


def best_candidates(records: list[dict], k: int) -> list[dict]:
    """The k highest-reward episodes with distinct policies."""
    seen, best = set(), []
    for record in sorted((r for r in records if r["event"] == "episode"), key=lambda r: (-r["reward"], r["episode"])):
        if record["policy_hash"] not in seen:
            seen.add(record["policy_hash"])
            best.append(record)
    return best[:k]


Prepared = tuple[Policy, object, np.ndarray, np.ndarray]  # policy, integer graph, verify images, labels


def deployable(policy: Policy, scorer: Scorer) -> Prepared:
    """The integer graph `policy` deploys (fine-tuned like its score, deterministic, and lowered; or
    with --random-weights, random weights calibrated post-training) and the images that verify it."""
    from harness.datasets.measured import measured_inputs
    from harness.quantize.lower import lower
    from harness.quantize.pipeline import random_weights_graph

    if scorer.oracle is None:
        graph = random_weights_graph(policy)
    else:
        graph = lower(scorer.oracle.fine_tune(policy), policy, {"search": scorer.settings.method})
    return (policy, graph, *measured_inputs(policy, graph, scorer.settings.verify_images))


def measure_on_board(prepared: Prepared, board: Board, log_path: Path) -> dict:
    """Build and measure a prepared policy end to end (harness.measure.run): the report."""
    from harness.measure.log import RunLog
    from harness.measure.run import measure

    policy, graph, inputs, labels = prepared
    with RunLog(log_path) as log:
        return measure(policy, graph, board, inputs, labels, log)


def reference(scorer: Scorer, board: Board, out_dir: Path) -> dict:
    """The all-8-bit policy within the board's budget (Scorer.board_reference): its accuracy, predicted
    and measured latency (the 'reference' record; when it cannot be built for the board, why)."""
    policy = scorer.reference_policy
    accuracy, _ = scorer.accuracy(policy)
    record = {"event": "reference", "policy_hash": policy.hash, "accuracy": accuracy,
              "predicted_latency": scorer.reference_latency, "latency_unit": scorer.table.unit}
    try:
        report = measure_on_board(deployable(policy, scorer), board,
                                  out_dir / "verify" / f"reference-{policy.hash}.jsonl")
    except HarnessError as error:
        return record | {"measured_latency": None, "not_measured": str(error)}
    return record | {"measured_latency": report["latency"]["median"], "device_accuracy": report["device_accuracy"],
                     "bit_exact": report["bit_exact"], "images": report["images"],
                     "elf_flash_bytes": report["memory"]["flash_bytes"], "elf_ram_bytes": report["memory"]["ram_bytes"]}


def verify(candidate: dict, scorer: Scorer, board: Board, out_dir: Path) -> dict:
    """Fine-tune, lower, build and measure one candidate on the board; the 'verified' record."""
    prepared = prepare_candidate(candidate, scorer)
    report = measure_on_board(prepared, board, verify_log_path(out_dir, prepared[0]))
    return verified_record(candidate, scorer, prepared[1], report)


def verify_candidates(candidates: list[dict], scorer: Scorer, board: Board, out_dir: Path,
                      pool=None) -> Iterator[dict]:
    """The 'verified' records of `candidates`, in order: measured one by one on `board`, or with a
    farm `pool` (harness.farm.pool.BoardPool) on all its boards at once (harness.farm.search)."""
    if pool is not None:
        from harness.farm.search import verify_on_farm
        yield from verify_on_farm(pool, candidates, scorer, board, out_dir)
        return
    for candidate in candidates:
        yield verify(candidate, scorer, board, out_dir)


def prepare_candidate(candidate: dict, scorer: Scorer) -> Prepared:
    """The candidate's policy, deployable graph and verify images (the farm measures them too)."""
    return deployable(scorer.logged_policy(candidate["layers"]), scorer)


def verify_log_path(out_dir: Path, policy: Policy) -> Path:
    return out_dir / "verify" / f"{policy.hash}.jsonl"


def verified_record(candidate: dict, scorer: Scorer, graph, report: dict) -> dict:
    """The 'verified' record of a candidate from its measured report (with a farm's, which boards measured it)."""
    measured = report["latency"]["median"]
    predicted = scorer.table.predict(graph)
    return {"event": "verified", "policy_hash": candidate["policy_hash"], "episode": candidate["episode"],
            "predicted_latency": predicted, "measured_latency": measured, "latency_unit": report["latency"]["unit"],
            "prediction_error": (predicted - measured) / measured, "accuracy": candidate["accuracy"],
            "device_accuracy": report["device_accuracy"], "bit_exact": report["bit_exact"],
            "images": report["images"],
            "reward_measured": scorer.reward(candidate["accuracy"], measured, scorer.reference_measured),
            "elf_flash_bytes": report["memory"]["flash_bytes"], "elf_ram_bytes": report["memory"]["ram_bytes"],
            "flash_budget": scorer.budget.flash, "ram_budget": scorer.budget.ram,
            "fits": report["memory"]["flash_bytes"] <= scorer.budget.flash
            and report["memory"]["ram_bytes"] <= scorer.budget.ram,
            **({"measured_on": report["farm"]} if "farm" in report else {})}


def search(settings: HaqSettings, out_dir: Path, board: Board,
           on_start: Callable[[int, int], None] = lambda done, total: None,
           on_episode: Callable[[dict], None] = lambda record: None,
           on_verified: Callable[[dict], None] = lambda record: None,
           on_profiled: Callable[[int, int], None] = lambda done, total: None, pool=None) -> dict:
    """Run (or resume) the search in out_dir; returns the summary (also written to out_dir). With a
    farm `pool` the profiling and the candidates' verification run on its boards."""
    from harness import zoo
    from harness.measure.profile import profile

    settings.check()
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / LOG_NAME
    records = read_log(log_path)
    header = {"event": "start", "settings": asdict(settings)}
    if records and _identity(records[0].get("settings", {})) != _identity(header["settings"]):
        raise HarnessError(f"{out_dir} holds a search with other settings ({records[0].get('settings')}); "
                           "use another --out folder")
    if not records:
        append(log_path, header)
    architecture = zoo.build(settings.model, settings.model_args)
    all_8 = uniform_policy("reference", settings.model, settings.model_args, architecture, 8,
                           {"flash": settings.flash, "ram": settings.ram})
    # a budget no policy meets: one line now, before profiling, training or building anything
    check_budget(all_8, architecture, Budget(parse_size(settings.flash), parse_size(settings.ram)), settings.pin_ends)
    if pool is None:  # measures only what the table lacks
        table, _ = profile(structural_graph(all_8), board, on_profiled)
    else:
        from harness.farm.profile import farm_profile
        table, _ = farm_profile(pool, structural_graph(all_8), board, on_profiled)
    oracle = None if settings.random_weights else AccuracyOracle(all_8.with_data(settings.data) if settings.data
                                                                 else all_8, settings.fine_tune)
    done = sum(r["event"] == "episode" for r in records)
    on_start(min(done, settings.episodes), settings.episodes)
    scorer = Scorer(settings, architecture, table, oracle, log_path, done, on_episode)
    logged_reference = next((r for r in records if r["event"] == "reference"), None)
    if logged_reference is None:
        logged_reference = reference(scorer, board, out_dir)
        append(log_path, logged_reference)
    scorer.reference_measured = logged_reference["measured_latency"]
    run_agent(settings, BitWidthEnv(architecture, scorer), out_dir, done)

    records = read_log(log_path)
    verified = {r["policy_hash"]: r for r in records if r["event"] == "verified"}
    best = best_candidates(records, settings.top_k)
    pending = verify_candidates([c for c in best if c["policy_hash"] not in verified], scorer, board, out_dir, pool)
    for candidate in best:
        if candidate["policy_hash"] not in verified:
            record = next(pending)  # the records come in the candidates' order
            append(log_path, record)
            verified[record["policy_hash"]] = record
        on_verified(verified[candidate["policy_hash"]])
    return write_outputs(read_log(log_path), scorer, out_dir)


def write_outputs(records: list[dict], scorer: Scorer, out_dir: Path) -> dict:
    """policy.json (the best measured candidate), pareto.csv, pareto.png and summary.json."""
    from harness.search.pareto import write_pareto

    verified = [r for r in records if r["event"] == "verified" and r["fits"]]
    if not verified:
        raise HarnessError("no verified candidate fits its budget on the board")
    best = max(verified, key=lambda r: (r["reward_measured"], -r["episode"]))
    episode = next(r for r in records if r["event"] == "episode" and r["policy_hash"] == best["policy_hash"])
    policy = scorer.logged_policy(episode["layers"])
    (out_dir / "policy.json").write_text(json.dumps(policy.document, indent=1) + "\n")
    csv_path, png_path = write_pareto(records, out_dir, [spec.name for spec in scorer.architecture.layers],
                                      chosen=best["policy_hash"])
    episodes = [r for r in records if r["event"] == "episode"]
    summary = {"method": scorer.settings.method, "best": best, "policy": str(out_dir / "policy.json"),
               "pareto_csv": str(csv_path), "pareto_png": str(png_path), "episodes": len(episodes),
               "best_episode_reward": max(r["reward"] for r in episodes),
               "rewards": [r["reward"] for r in episodes],
               "verified": [r for r in records if r["event"] == "verified"],
               "reference": next((r for r in records if r["event"] == "reference"), None),
               "reference_latency": scorer.reference_latency, "latency_unit": scorer.table.unit,
               "flash_budget": scorer.budget.flash, "ram_budget": scorer.budget.ram}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
