"""HAQ's agent as in mit-han-lab/haq (harness/search/haq_agent.py), its pinned ends, and the
latency target's units: on hand-made inputs, no board."""
import numpy as np
import pytest

from harness import zoo
from harness.errors import HarnessError
from harness.search.haq import HaqSettings, Scorer, pinned_ends
from harness.search.haq_agent import (BATCH, MEMORY_PER_LAYER, HaqAgent, RandomAgent, load_agent, noise_sigma,
                                      save_agent, truncated_normal)
from harness.units import parse_latency

N_STATES, N_LAYERS = 5, 3


def _episode(agent, episode: int, reward: float):
    states = [np.full(N_STATES, i / N_LAYERS, dtype=np.float32) for i in range(N_LAYERS)]
    actions = [agent.act(state, episode) for state in states]
    agent.learn(states, actions, reward, episode)
    return states, actions


def test_noise_is_haqs_schedule():
    assert noise_sigma(0, 20) == noise_sigma(20, 20) == 0.5
    assert noise_sigma(21, 20) == pytest.approx(0.495)
    assert noise_sigma(120, 20) == pytest.approx(0.5 * 0.99 ** 100)


def test_truncated_normal_stays_in_0_1_around_its_mean():
    rng = np.random.default_rng(0)
    draws = np.array([truncated_normal(rng, np.array([0.05, 0.7]), 0.5) for _ in range(300)])
    assert draws.min() >= 0 and draws.max() <= 1
    narrow = np.array([truncated_normal(rng, np.array([0.3]), 0.01) for _ in range(100)])
    assert abs(narrow.mean() - 0.3) < 0.005


def test_every_step_of_an_episode_stores_the_episode_reward_and_warm_up_does_not_learn():
    agent = HaqAgent(N_STATES, 2, N_LAYERS, seed=0, warmup=2)
    _episode(agent, 0, 0.25)
    assert [entry[2] for entry in agent.memory] == [0.25] * N_LAYERS
    assert [entry[4] for entry in agent.memory] == [1.0, 1.0, 0.0]  # only the last step ends the episode
    assert np.array_equal(agent.memory[0][3], agent.memory[1][0])  # a step's next state is the next layer's
    assert agent.baseline is None, "no update during warm-up"
    _episode(agent, 1, 0.75)
    assert agent.baseline is None
    _episode(agent, 2, 0.5)
    # after warm-up the moving average of sampled rewards is the baseline (alpha 0.5 per update)
    assert agent.baseline is not None and 0.25 <= agent.baseline <= 0.75


def test_the_replay_memory_holds_128_steps_per_layer():
    agent = HaqAgent(N_STATES, 2, N_LAYERS, seed=0, warmup=10**6)
    for episode in range(MEMORY_PER_LAYER + 5):
        _episode(agent, episode, float(episode))
    assert len(agent.memory) == MEMORY_PER_LAYER * N_LAYERS and BATCH < len(agent.memory)
    assert agent.memory[-1][2] == MEMORY_PER_LAYER + 4


def test_the_agent_learns_which_action_pays():
    """Reward = the mean of the first action: after warm-up the actor's output moves up."""
    import torch

    agent = HaqAgent(N_STATES, 2, N_LAYERS, seed=1, warmup=5)
    state = torch.zeros(1, N_STATES)
    for episode in range(60):
        states = [np.zeros(N_STATES, dtype=np.float32)] * N_LAYERS
        actions = [agent.act(s, episode) for s in states]
        agent.learn(states, actions, float(np.mean([a[0] for a in actions])), episode)
    with torch.no_grad():
        assert agent.actor(state)[0, 0] > 0.8


def test_a_saved_agent_acts_the_same_after_restoring(tmp_path):
    agent = HaqAgent(N_STATES, 2, N_LAYERS, seed=0, warmup=1)
    for episode in range(3):
        _episode(agent, episode, 0.1 * episode)
    save_agent(agent, tmp_path / "agent.pkl")
    again = HaqAgent(N_STATES, 2, N_LAYERS, seed=99, warmup=1)
    load_agent(again, tmp_path / "agent.pkl")
    state = np.full(N_STATES, 0.5, dtype=np.float32)
    assert np.array_equal(agent.act(state, 5), again.act(state, 5)) and again.baseline == agent.baseline


def test_random_agent_is_uniform_and_seeded():
    one, two = RandomAgent(2, 7), RandomAgent(2, 7)
    draws = np.array([one.act(None, e) for e in range(500)])
    assert draws.min() >= 0 and draws.max() <= 1 and abs(draws.mean() - 0.5) < 0.05
    assert np.array_equal(draws[0], two.act(None, 0))


def test_first_and_last_layer_are_pinned_to_8_bits_and_never_cut():
    arch = zoo.build("lenet5-mnist")
    assert pinned_ends(arch) == ({"c1", "fc"}, {"flatten"})

    class Table:
        unit = "ticks"

        def predict(self, graph):
            return 1.0

        def layer_entry(self, graph, layer, w_bits=None):
            return None  # never profiled: no flash is given back

    settings = HaqSettings("lenet5-mnist", {}, "90kB", "512kB", "qemu-m7", 1, 0.0, None, 0, 1)
    scorer = Scorer(settings, arch, Table(), None, None, 0, lambda r: None)
    record = scorer.evaluate({s.name: 2 for s in arch.layers}, {s.name: 2 for s in arch.layers})
    assert record["layers"]["c1"]["w_bits"] == record["layers"]["fc"]["w_bits"] == 8
    assert record["layers"]["flatten"]["a_bits"] == 8 and record["layers"]["c3"]["w_bits"] == 2
    every_8 = scorer.evaluate({s.name: 8 for s in arch.layers}, {s.name: 8 for s in arch.layers})
    assert every_8["budget_cuts"] > 0 and every_8["flash_bytes"] <= 90 * 1024  # cut elsewhere to fit
    assert every_8["layers"]["c1"]["w_bits"] == every_8["layers"]["fc"]["w_bits"] == 8
    assert record["accuracy"] is None and record["reward"] == 0.0  # random weights: no accuracy term


@pytest.mark.parametrize("text, units", [("2.5ms", 1_200_000), ("900000", 900_000), ("800us", 384_000),
                                         ("0.01s", 4_800_000), ("1.5e6", 1_500_000)])
def test_target_latency_in_board_units_or_time_at_the_board_clock(text, units):
    assert parse_latency(text, 480_000_000) == pytest.approx(units)


@pytest.mark.parametrize("text", ["fast", "2.5 min", "-3ms", "0", "ms"])
def test_bad_target_latency_is_one_clear_error(text):
    with pytest.raises(HarnessError, match="--target-latency"):
        parse_latency(text, 480_000_000)


@pytest.mark.parametrize("args, message", [
    (["--target-latency", "soon"], "--target-latency 'soon'"),
    (["--model", "mobilenet_v1"], "--random-weights"),
    (["--method", "random", "--model", "lenet5-mnist", "--random-weights", "--data", "mnist"],
     "--random-weights scores no accuracy"),
    (["--model", "mlperf_ic_resnet8", "--data", "digits"],
     "--data digits: 1-channel images, but model mlperf_ic_resnet8 takes 32x32x3 inputs"),
    (["--finetune-epochs", "-1"], "--finetune-epochs must be at least 0"),
    (["--warmup", "-2"], "--warmup must be at least 0"),
])
def test_search_refuses_bad_settings_in_one_line(capsys, args, message):
    from harness.cli import main

    assert main(["search", "--method", "haq", "--episodes", "2", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
