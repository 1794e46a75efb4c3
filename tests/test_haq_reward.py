"""The HAQ reward and the choices made from it, on hand-computed inputs (harness/search/haq.py).

A stand-in latency table predicts 10 ticks per weight bit of every weighted layer plus 20, so
digits-cnn's all-8-bit reference (6 weighted layers) is 20 + 6 * 80 = 500 ticks; the accuracy
oracle returns a fixed score, so only latency tells two policies apart.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from harness import zoo
from harness.search.haq import HaqSettings, Scorer, best_candidates, read_log, write_outputs
from harness.search.haq_env import BitWidthEnv

MODEL = "digits-cnn"
REFERENCE_TICKS = 500.0


class TicksPerWeightBit:
    unit = "ticks"

    def predict(self, graph) -> float:
        return 20.0 + sum(10.0 * layer.w_bits for layer in graph.layers if layer.w_bits is not None)

    def layer_entry(self, graph, layer, w_bits=None) -> float:
        return 10.0 * (w_bits or layer.w_bits)  # more bits, slower: no flash is given back


class FixedAccuracy:
    def __init__(self, score: float = 0.9):
        self.score = score

    def accuracy(self, policy) -> tuple[float, bool]:
        return self.score, False

    def fine_tune(self, policy):
        return None  # verify's lowering is replaced in the test that calls it


def _scorer(tmp_path, weight: float = 0.5, target: float | None = None) -> Scorer:
    settings = HaqSettings(MODEL, {}, "2MB", "512kB", "qemu-m7", episodes=2, latency_weight=weight,
                           target_latency=target, seed=0, top_k=2, pin_ends=False)
    return Scorer(settings, zoo.build(MODEL), TicksPerWeightBit(), FixedAccuracy(), tmp_path / "search.jsonl", 0,
                  lambda record: None)


def test_reference_latency_is_the_all_8_bit_prediction(tmp_path):
    assert _scorer(tmp_path).reference_latency == REFERENCE_TICKS


def test_the_reference_of_a_model_whose_all_8_bits_exceed_the_board_is_cut_to_fit_it(tmp_path):
    from harness.backends import load_board
    from harness.ir.memory import memory_report
    from harness.quantize.lower import structural_graph

    args = {"width": 0.75, "resolution": 224}  # all 8 bits: 2.6 MB of weights, 600 kB of activations
    settings = HaqSettings("mobilenet_v1", args, "2MB", "512kB", "qemu-m7", episodes=2, latency_weight=1.0,
                           target_latency=None, seed=0, top_k=1, random_weights=True)
    scorer = Scorer(settings, zoo.build("mobilenet_v1", args), TicksPerWeightBit(), None, tmp_path / "s.jsonl", 0,
                    lambda record: None)
    graph = structural_graph(scorer.reference_policy)
    report, board = memory_report(graph), load_board("qemu-m7").budget
    assert report.flash_bytes <= board.flash and report.ram_bytes <= board.ram
    bits = [layer.w_bits for layer in graph.layers if layer.w_bits is not None]
    assert 8 in bits and min(bits) < 8  # cut only where it has to be
    assert scorer.reference_latency == TicksPerWeightBit().predict(graph)


def test_latency_term_without_a_target_is_relative_to_all_8_bits(tmp_path):
    scorer = _scorer(tmp_path, weight=0.5)
    assert scorer.latency_term(250.0) == 0.5
    assert scorer.latency_term(500.0) == 1.0
    assert scorer.reward(0.9, 250.0) == pytest.approx(0.9 - 0.5 * 0.5)
    assert scorer.reward(0.9, 750.0) == pytest.approx(0.9 - 0.5 * 1.5)


def test_target_latency_is_a_hinge(tmp_path):
    scorer = _scorer(tmp_path, weight=2.0, target=400.0)
    assert scorer.latency_term(100.0) == 0.0 and scorer.latency_term(400.0) == 0.0  # at or below: free
    assert scorer.latency_term(500.0) == pytest.approx(0.25)
    assert scorer.reward(0.8, 300.0) == 0.8
    assert scorer.reward(0.8, 600.0) == pytest.approx(0.8 - 2.0 * 0.5)


def test_latency_weight_zero_ignores_latency(tmp_path):
    scorer = _scorer(tmp_path, weight=0.0)
    assert scorer.reward(0.7, 10.0) == scorer.reward(0.7, 10_000.0) == 0.7


def _episode(n: int, policy_hash: str, reward: float, layers: dict | None = None) -> dict:
    return {"event": "episode", "episode": n, "policy_hash": policy_hash, "reward": reward, "accuracy": 0.9,
            "layers": layers or {}, "predicted_latency": 100.0, "flash_bytes": 1, "ram_bytes": 1}


def test_top_k_keeps_the_best_episode_of_each_policy_once():
    records = [{"event": "start"}, _episode(0, "a", 0.5), _episode(1, "b", 0.7), _episode(2, "a", 0.9),
               _episode(3, "c", 0.6), _episode(4, "b", 0.7), {"event": "verified", "policy_hash": "c", "reward": 9}]
    assert [(r["policy_hash"], r["episode"]) for r in best_candidates(records, 3)] == [("a", 2), ("b", 1), ("c", 3)]
    assert [r["policy_hash"] for r in best_candidates(records, 2)] == ["a", "b"]
    assert best_candidates(records, 1)[0]["reward"] == 0.9


def _layers(scorer: Scorer, w_bits: int) -> dict:
    arch = scorer.architecture
    policy = scorer.policy({s.name: w_bits for s in arch.layers if s.has_weights}, {s.name: 8 for s in arch.layers})
    return policy.document["layers"]


def test_the_best_candidate_is_chosen_by_measured_reward_among_those_that_fit(tmp_path):
    scorer = _scorer(tmp_path)
    fast, slow, huge = _layers(scorer, 4), _layers(scorer, 8), _layers(scorer, 2)
    records = [_episode(0, "slow", 0.9, slow), _episode(1, "fast", 0.5, fast), _episode(2, "huge", 0.95, huge)]

    def verified(name, episode, measured, fits=True):
        return {"event": "verified", "policy_hash": name, "episode": episode, "predicted_latency": 100.0,
                "measured_latency": measured, "reward_measured": scorer.reward(0.9, measured), "fits": fits,
                "accuracy": 0.9, "device_accuracy": 0.9, "bit_exact": 5, "images": 5}

    # predicted, "slow" led; measured on the board, "fast" is faster; "huge" scores best but does not fit
    records += [verified("slow", 0, 900.0), verified("fast", 1, 300.0), verified("huge", 2, 100.0, fits=False)]
    summary = write_outputs(records, scorer, tmp_path)
    assert summary["best"]["policy_hash"] == "fast"
    assert summary["best"]["reward_measured"] == pytest.approx(0.9 - 0.5 * 300 / REFERENCE_TICKS)
    written = json.loads((tmp_path / "policy.json").read_text())
    assert written["layers"] == fast


@pytest.mark.parametrize("elf_flash, fits", [(1000, True), (3 * 2**20, False)])
def test_a_verified_candidate_is_rewarded_by_its_measured_latency(tmp_path, monkeypatch, elf_flash, fits):
    """verify() with the board replaced: predicted 500 ticks (all 8 bits), measured 300. The
    measured reward uses 300, the prediction error is (500 - 300) / 300, and the ELF's own
    sizes decide whether it fits."""
    import harness.datasets.measured
    import harness.measure.run
    import harness.quantize.lower
    from harness.quantize.lower import structural_graph
    from harness.search.haq import verify

    scorer = _scorer(tmp_path, weight=0.5)
    report = {"latency": {"median": 300.0, "unit": "ticks"}, "device_accuracy": 0.85, "bit_exact": 5, "images": 5,
              "memory": {"flash_bytes": elf_flash, "ram_bytes": 1000}}
    monkeypatch.setattr(harness.quantize.lower, "lower", lambda net, policy, meta: structural_graph(policy))
    monkeypatch.setattr(harness.datasets.measured, "measured_inputs", lambda policy, graph, n: (None, None))
    monkeypatch.setattr(harness.measure.run, "measure", lambda *args: report)
    candidate = _episode(3, "p", 0.1, _layers(scorer, 8))
    record = verify(candidate, scorer, board=None, out_dir=tmp_path)
    assert (record["predicted_latency"], record["measured_latency"]) == (500.0, 300.0)
    assert record["reward_measured"] == pytest.approx(0.9 - 0.5 * 300 / REFERENCE_TICKS)
    assert record["prediction_error"] == pytest.approx(200 / 300)
    assert record["fits"] is fits and record["episode"] == 3 and record["device_accuracy"] == 0.85


def _run_episode(env: BitWidthEnv, weight_action: float) -> dict:
    env.reset(seed=0)
    for _ in env.architecture.layers:
        _, _, done, _, info = env.step(np.array([weight_action, 1.0]))
    assert done
    return info


@pytest.mark.parametrize("weight, preferred", [(1.0, "4-bit"), (0.0, "8-bit")])
def test_a_latency_weight_makes_the_search_prefer_the_faster_of_two_equal_policies(tmp_path, weight, preferred):
    """Two episodes through the real scoring path (budget, log, reward): 8-bit weights (500 ticks)
    first, then 4-bit (20 + 6 * 40 = 260 ticks), both at the same accuracy. With a latency weight the faster
    one is the top candidate; without one they tie and the earlier wins."""
    scorer = _scorer(tmp_path, weight=weight)
    env = BitWidthEnv(scorer.architecture, scorer)
    slow, fast = _run_episode(env, 1.0), _run_episode(env, 0.5)
    assert (slow["predicted_latency"], fast["predicted_latency"]) == (500.0, 260.0)
    assert fast["accuracy"] == slow["accuracy"] == 0.9
    assert slow["reward"] == pytest.approx(0.9 - weight * 1.0) and fast["reward"] == pytest.approx(0.9 - weight * 0.52)
    (best,) = best_candidates(read_log(tmp_path / "search.jsonl"), 1)
    assert best["policy_hash"] == {"4-bit": fast, "8-bit": slow}[preferred]["policy_hash"]


def test_read_log_drops_a_torn_last_line(tmp_path):
    path = tmp_path / "search.jsonl"
    records = [{"event": "start", "settings": {}}, _episode(0, "a", 0.5)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"event": "episode", "epis')
    assert read_log(path) == records
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert read_log(path) == records
    assert read_log(tmp_path / "missing.jsonl") == []
