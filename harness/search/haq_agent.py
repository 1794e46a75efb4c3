"""The agents that pick an episode's bits: HAQ's DDPG and the random baseline.

HaqAgent follows Wang et al. 2019 (HAQ, mit-han-lab/haq) where it decides what is learned:
- actor state -> 300 -> 300 -> actions (sigmoid, so actions lie in [0, 1]); critic
  (state, action) -> 300 -> 300 -> Q, the action joining at the first hidden layer;
  Adam, actor 1e-4, critic 1e-3; soft target updates tau 0.01; batches of 64; a replay
  memory of 128 transitions per layer;
- the episode's reward is given to every step of the episode, the discount is 1, and a
  moving-average baseline (alpha 0.5 over batch means) is subtracted from sampled rewards;
- warm-up: the first `warmup` episodes (HAQ: 20) act uniformly at random and do not learn;
  after it, one update per stored step, and actions are drawn from a normal distribution
  around the actor's output truncated to [0, 1], sigma = 0.5 * 0.99 ** (episode - warmup).

RandomAgent draws every action uniformly in [0, 1]: the baseline with the same number of
evaluations. Both save and restore their whole state (networks, optimizers, memory, baseline,
generator), so an interrupted search resumes where it stopped.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from harness.files import write_atomic

HIDDEN = 300
ACTOR_LR, CRITIC_LR = 1e-4, 1e-3
TAU = 0.01
BATCH = 64
MEMORY_PER_LAYER = 128
DISCOUNT = 1.0
BASELINE_ALPHA = 0.5
NOISE_START, NOISE_DECAY = 0.5, 0.99
WARMUP_EPISODES = 20
NETS = ("actor", "actor_target", "critic", "critic_target", "actor_optim", "critic_optim")


def noise_sigma(episode: int, warmup: int) -> float:
    """HAQ's exploration width after warm-up."""
    return NOISE_START * NOISE_DECAY ** max(0, episode - warmup)


def truncated_normal(rng: np.random.Generator, mean: np.ndarray, sigma: float) -> np.ndarray:
    """One draw per element from N(mean, sigma) truncated to [0, 1]."""
    from scipy.stats import truncnorm

    return truncnorm.rvs((0.0 - mean) / sigma, (1.0 - mean) / sigma, loc=mean, scale=sigma, random_state=rng)


class RandomAgent:
    """Uniform random actions; learns nothing."""

    kind = "random"

    def __init__(self, n_actions: int, seed: int):
        self.n_actions = n_actions
        self.rng = np.random.default_rng(seed)

    def act(self, state: np.ndarray, episode: int) -> np.ndarray:
        return self.rng.uniform(0.0, 1.0, self.n_actions)

    def learn(self, states: list[np.ndarray], actions: list[np.ndarray], reward: float, episode: int) -> None:
        pass

    def state(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def restore(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]


class HaqAgent(RandomAgent):
    """HAQ's DDPG (see the module doc)."""

    kind = "haq"

    def __init__(self, n_states: int, n_actions: int, n_layers: int, seed: int, warmup: int = WARMUP_EPISODES):
        import torch
        from torch import nn

        from harness.search.accuracy import SEARCH_TORCH_THREADS

        super().__init__(n_actions, seed)
        torch.manual_seed(seed)
        torch.set_num_threads(SEARCH_TORCH_THREADS)  # small batches: one thread is fastest on a shared machine
        self.warmup = warmup

        def mlp(inputs: int, outputs: int, last: nn.Module | None) -> nn.Sequential:
            layers = [nn.Linear(inputs, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(),
                      nn.Linear(HIDDEN, outputs)]
            return nn.Sequential(*layers, *([last] if last else []))

        self.actor, self.actor_target = (mlp(n_states, n_actions, nn.Sigmoid()) for _ in range(2))
        # the action joins the state at the first hidden layer: one linear layer over both
        self.critic, self.critic_target = (mlp(n_states + n_actions, 1, None) for _ in range(2))
        self.actor_target.load_state_dict(self.actor.state_dict())
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.actor_optim = torch.optim.Adam(self.actor.parameters(), lr=ACTOR_LR)
        self.critic_optim = torch.optim.Adam(self.critic.parameters(), lr=CRITIC_LR)
        self.capacity = MEMORY_PER_LAYER * n_layers
        self.memory: list[tuple[np.ndarray, np.ndarray, float, np.ndarray, float]] = []
        self.baseline: float | None = None

    def act(self, state: np.ndarray, episode: int) -> np.ndarray:
        if episode < self.warmup:
            return super().act(state, episode)
        import torch

        with torch.no_grad():
            mean = self.actor(torch.as_tensor(state, dtype=torch.float32)[None])[0].numpy().astype(np.float64)
        return truncated_normal(self.rng, mean, noise_sigma(episode, self.warmup))

    def learn(self, states: list[np.ndarray], actions: list[np.ndarray], reward: float, episode: int) -> None:
        """Store every step with the episode's reward; after warm-up, one update per step."""
        for index, (state, action) in enumerate(zip(states, actions)):
            last = index == len(states) - 1
            following = state if last else states[index + 1]
            self.memory.append((state, action, reward, following, 0.0 if last else 1.0))
        del self.memory[:max(0, len(self.memory) - self.capacity)]
        if episode >= self.warmup:
            for _ in states:
                self._update()

    def _update(self) -> None:
        import torch

        picks = self.rng.integers(0, len(self.memory), size=min(BATCH, len(self.memory)))
        state, action, reward, following, alive = (
            torch.as_tensor(np.array([self.memory[i][field] for i in picks]), dtype=torch.float32)
            for field in range(5))
        mean = float(reward.mean())
        self.baseline = mean if self.baseline is None else self.baseline + BASELINE_ALPHA * (mean - self.baseline)
        with torch.no_grad():
            next_q = self.critic_target(torch.cat([following, self.actor_target(following)], 1))[:, 0]
            target = (reward - self.baseline) + DISCOUNT * alive * next_q
        q = self.critic(torch.cat([state, action], 1))[:, 0]
        critic_loss = torch.nn.functional.mse_loss(q, target)
        self.critic_optim.zero_grad()
        critic_loss.backward()
        self.critic_optim.step()
        actor_loss = -self.critic(torch.cat([state, self.actor(state)], 1)).mean()
        self.actor_optim.zero_grad()
        actor_loss.backward()
        self.actor_optim.step()
        with torch.no_grad():
            for target_net, net in ((self.actor_target, self.actor), (self.critic_target, self.critic)):
                for target_param, param in zip(target_net.parameters(), net.parameters()):
                    target_param.mul_(1.0 - TAU).add_(TAU * param)

    def state(self) -> dict:
        return super().state() | {name: getattr(self, name).state_dict() for name in NETS} | {
            "memory": self.memory, "baseline": self.baseline}

    def restore(self, state: dict) -> None:
        super().restore(state)
        for name in NETS:
            getattr(self, name).load_state_dict(state[name])
        self.memory, self.baseline = state["memory"], state["baseline"]


def save_agent(agent: RandomAgent, path: Path) -> None:
    """Write atomically: a kill mid-save leaves the previous state."""
    write_atomic(path, pickle.dumps(agent.state()))


def load_agent(agent: RandomAgent, path: Path) -> None:
    if path.is_file():
        agent.restore(pickle.loads(path.read_bytes()))
