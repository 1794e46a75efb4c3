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
from collections.abc import Iterator
from typing import Callable

import numpy as np

from harness.boards import Board
from harness.errors import HarnessError
from harness.measure.latency import LatencyTable
from harness.quantize.lower import structural_graph
from harness.policy import Budget, Policy, parse_policy
from harness.search.accuracy import AccuracyOracle, ShortQAT
from harness.search.constraints import enforce_budget
from harness.search.documents import policy_document, uniform_policy
from harness.search.haq_env import BitWidthEnv
from harness.units import parse_size
from harness.zoo.architecture import Architecture

LOG_NAME = "search.jsonl"
AGENT_NAME = "agent.zip"
REPLAY_NAME = "replay.pkl"
NOISE_START, NOISE_DECAY, NOISE_FLOOR = 0.5, 0.98, 0.1  # exploration sigma per episode (HAQ: 0.5, 0.99)
WARMUP_EPISODES = 10  # random policies before the agent learns
VERIFY_IMAGES = 50


@dataclass(frozen=True)
class HaqSettings:
    model: str
    model_args: dict
    flash: str
    ram: str
    board: str
    episodes: int
    latency_weight: float
    target_latency: float | None
    seed: int
    top_k: int
    verify_images: int = VERIFY_IMAGES

    def check(self) -> None:
        from harness.quantize.pipeline import TRAINED_HERE

        if self.model not in TRAINED_HERE:
            raise HarnessError(f"haq scores accuracy by fine-tuning, and {self.model!r} has no training data here "
                               f"(trainable: {', '.join(TRAINED_HERE)}); use --method memory-driven")
        if self.episodes < 1:
            raise HarnessError(f"--episodes must be at least 1, got {self.episodes}")
        if self.latency_weight < 0:
            raise HarnessError(f"--latency-weight must not be negative, got {self.latency_weight}")
        if self.target_latency is not None and self.target_latency <= 0:
            raise HarnessError(f"--target-latency must be positive, got {self.target_latency}")
        if self.top_k < 1:
            raise HarnessError(f"--top-k must be at least 1, got {self.top_k}")


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


class Scorer:
    """Turns an episode's bits into a fitted policy, its predicted latency, accuracy and reward."""

    def __init__(self, settings: HaqSettings, architecture: Architecture, table: LatencyTable,
                 oracle: AccuracyOracle, log_path: Path, first_episode: int,
                 on_episode: Callable[[dict], None]):
        self.settings = settings
        self.architecture = architecture
        self.table = table
        self.oracle = oracle
        self.log_path = log_path
        self.episode = first_episode
        self.on_episode = on_episode
        self.budget = Budget(parse_size(settings.flash), parse_size(settings.ram))
        reference = uniform_policy("reference", settings.model, settings.model_args, architecture, 8,
                                   self.budget_document)
        self.reference_latency = table.predict(structural_graph(reference))

    @property
    def budget_document(self) -> dict:
        return {"flash": self.settings.flash, "ram": self.settings.ram}

    def policy(self, w_bits: dict[str, int], a_bits: dict[str, int]) -> Policy:
        s = self.settings
        return parse_policy(policy_document(f"{s.model}-haq", s.model, s.model_args, self.architecture,
                                            w_bits, a_bits, self.budget_document))

    def logged_policy(self, layers: dict) -> Policy:
        """The policy of an episode record's "layers"."""
        return self.policy({name: entry["w_bits"] for name, entry in layers.items() if "w_bits" in entry},
                           {name: entry["a_bits"] for name, entry in layers.items() if "a_bits" in entry})

    def latency_term(self, latency: float) -> float:
        target = self.settings.target_latency
        if target is None:
            return latency / self.reference_latency
        return max(0.0, latency / target - 1.0)

    def reward(self, accuracy: float, latency: float) -> float:
        return accuracy - self.settings.latency_weight * self.latency_term(latency)

    def __call__(self, w_bits: dict[str, int], a_bits: dict[str, int]) -> tuple[float, dict]:
        started = time.monotonic()
        graph = structural_graph(self.policy(w_bits, a_bits))
        report, cuts = enforce_budget(graph, self.budget)
        fitted_w = {layer.name: layer.w_bits for layer in graph.layers if layer.w_bits is not None}
        fitted_a = {name: tensor.bits for name, tensor in graph.tensors.items()}
        policy = self.policy(fitted_w, fitted_a)
        predicted = self.table.predict(graph)
        accuracy, cached = self.oracle.accuracy(policy)
        record = {"event": "episode", "episode": self.episode, "policy_hash": policy.hash,
                  "layers": policy.document["layers"], "accuracy": accuracy, "predicted_latency": predicted,
                  "latency_unit": self.table.unit, "reward": self.reward(accuracy, predicted),
                  "flash_bytes": report.flash_bytes, "ram_bytes": report.ram_bytes, "budget_cuts": cuts,
                  "accuracy_cached": cached, "seconds": round(time.monotonic() - started, 3)}
        append(self.log_path, record)
        self.episode += 1
        self.on_episode(record)
        return record["reward"], record


def run_agent(settings: HaqSettings, env: BitWidthEnv, out_dir: Path, done: int) -> None:
    """Train DDPG for the episodes still to do, saving the agent after every episode."""
    from stable_baselines3 import DDPG
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.noise import NormalActionNoise

    steps_per_episode = len(env.architecture.layers)
    remaining = settings.episodes - done
    if remaining <= 0:
        return
    agent_path, replay_path = out_dir / AGENT_NAME, out_dir / REPLAY_NAME

    def sigma(episode: int) -> float:
        return max(NOISE_FLOOR, NOISE_START * NOISE_DECAY ** max(0, episode - WARMUP_EPISODES))

    noise = NormalActionNoise(np.zeros(2), np.full(2, sigma(done)))
    if agent_path.is_file() and replay_path.is_file():
        agent = DDPG.load(agent_path, env=env, action_noise=noise)
        agent.load_replay_buffer(replay_path)
    else:
        agent = DDPG("MlpPolicy", env, learning_rate=1e-3, buffer_size=100_000, gamma=0.99, tau=0.01,
                     batch_size=64, learning_starts=WARMUP_EPISODES * steps_per_episode, action_noise=noise,
                     policy_kwargs={"net_arch": [64, 64]}, seed=settings.seed, device="cpu", verbose=0)

    class EveryEpisode(BaseCallback):
        def _on_step(self) -> bool:
            if self.locals["dones"][0]:
                episode = done + self.n_calls // steps_per_episode
                noise._sigma = np.full(2, sigma(episode))
                _save_atomically(agent.save, agent_path)  # a kill mid-save leaves the previous one
                _save_atomically(agent.save_replay_buffer, replay_path)
            return True

    agent.learn(remaining * steps_per_episode, callback=EveryEpisode(), reset_num_timesteps=False,
                progress_bar=False)


def _save_atomically(save: Callable[[Path], None], path: Path) -> None:
    staging = path.with_name(f".staging-{path.name}")  # same suffix: stable-baselines3 keeps it
    save(staging)
    os.replace(staging, path)


def best_candidates(records: list[dict], k: int) -> list[dict]:
    """The k highest-reward episodes with distinct policies."""
    seen, best = set(), []
    for record in sorted((r for r in records if r["event"] == "episode"), key=lambda r: (-r["reward"], r["episode"])):
        if record["policy_hash"] not in seen:
            seen.add(record["policy_hash"])
            best.append(record)
    return best[:k]


def verify(candidate: dict, scorer: Scorer, board: Board, out_dir: Path) -> dict:
    """Fine-tune, lower, build and measure one candidate on the board; the 'verified' record."""
    from harness.measure.log import RunLog
    from harness.measure.run import measure

    policy, graph, inputs, labels = prepare_candidate(candidate, scorer)
    with RunLog(verify_log_path(out_dir, policy)) as log:
        report = measure(policy, graph, board, inputs, labels, log)
    return verified_record(candidate, scorer, graph, report)


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


def prepare_candidate(candidate: dict, scorer: Scorer) -> tuple[Policy, object, np.ndarray, np.ndarray]:
    """The candidate's policy fine-tuned and lowered to its graph, and the images that verify it."""
    from harness.datasets.measured import measured_inputs
    from harness.quantize.lower import lower

    policy = scorer.logged_policy(candidate["layers"])
    net = scorer.oracle.fine_tune(policy)
    graph = lower(net, policy, {"search": "haq"})
    return (policy, graph, *measured_inputs(policy, graph, scorer.settings.verify_images))


def verify_log_path(out_dir: Path, policy: Policy) -> Path:
    return out_dir / "verify" / f"{policy.hash}.jsonl"


def verified_record(candidate: dict, scorer: Scorer, graph, report: dict) -> dict:
    """The 'verified' record of a candidate from its measured report (with a farm's, which boards measured it)."""
    measured = report["latency"]["median"]
    predicted = scorer.table.predict(graph)
    return {"event": "verified", "policy_hash": report["policy_hash"], "episode": candidate["episode"],
            "predicted_latency": predicted, "measured_latency": measured, "latency_unit": report["latency"]["unit"],
            "prediction_error": (predicted - measured) / measured, "accuracy": candidate["accuracy"],
            "device_accuracy": report["device_accuracy"], "bit_exact": report["bit_exact"],
            "images": report["images"], "reward_measured": scorer.reward(candidate["accuracy"], measured),
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
    reference = uniform_policy("reference", settings.model, settings.model_args, architecture, 8,
                               {"flash": settings.flash, "ram": settings.ram})
    if pool is None:  # measures only what the table lacks
        table, _ = profile(structural_graph(reference), board, on_profiled)
    else:
        from harness.farm.profile import farm_profile
        table, _ = farm_profile(pool, structural_graph(reference), board, on_profiled)
    oracle = AccuracyOracle(reference, ShortQAT(seed=settings.seed))
    done = sum(r["event"] == "episode" for r in records)
    on_start(min(done, settings.episodes), settings.episodes)
    scorer = Scorer(settings, architecture, table, oracle, log_path, done, on_episode)
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
    summary = {"best": best, "policy": str(out_dir / "policy.json"), "pareto_csv": str(csv_path),
               "pareto_png": str(png_path), "episodes": sum(r["event"] == "episode" for r in records),
               "verified": [r for r in records if r["event"] == "verified"],
               "reference_latency": scorer.reference_latency, "latency_unit": scorer.table.unit}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
