"""Every POCA formula as a pure function (spec 8.5); the PPO pieces it shares come from trainers/ppo/losses.py.

- TD(lambda) targets per reward signal, from the group's values V(all members) after each step:
    G_{T-1} = r_{T-1} + gamma * V_T
    G_t     = r_t + gamma * ((1 - lambda) * V_{t+1} + lambda * G_{t+1})
  where V_T is the bootstrap: the value of the group after the last step, 0 only when the whole group
  is done and the end was not an interruption (rollout/groups.py decides which).
- Advantage of agent i = G - b_i (its baseline, from its own observation and its groupmates'
  observations and actions), averaged over the reward signals, normalised over the buffer as in PPO.
- Loss = policy_loss + 0.5 * (value_loss + 0.5 * baseline_loss) - beta * mean(entropy), the policy loss
  PPO's clipped surrogate, the value and baseline losses PPO's clipped value loss against G.
- POCA's extrinsic reward of agent i = its own reward + its groupmates' rewards + the group reward.
"""

from __future__ import annotations

import numpy as np
import torch

VALUE_WEIGHT = 0.5
BASELINE_WEIGHT = 0.5


def lambda_returns(rewards: np.ndarray, next_values: np.ndarray, *, gamma: float, lambd: float) -> np.ndarray:
    """TD(lambda) targets (T,) of one signal; `next_values[t]` = V after step t (the last one: the bootstrap)."""
    n = len(rewards)
    out = np.empty(n, dtype=np.float32)
    carry = float(next_values[-1]) if n else 0.0  # G_T := V_T makes the first step the plain TD target
    for t in range(n - 1, -1, -1):
        v_next = float(next_values[t])
        carry = float(rewards[t]) + gamma * ((1.0 - lambd) * v_next + lambd * carry)
        out[t] = carry
    return out


def group_bootstrap(next_values: np.ndarray, *, group_done: bool) -> np.ndarray:
    """The values after each step (T, S) with the group bootstrap rule applied to the last: 0 only when the
    whole group is done and the end was not an interruption (`group_done`), else the group's value."""
    out = np.array(next_values, dtype=np.float32, copy=True)
    if group_done:
        out[-1] = 0.0
    return out


def team_rewards(own_and_group: np.ndarray, groupmates: np.ndarray) -> np.ndarray:
    """The extrinsic reward POCA learns from: (own reward + group reward) + groupmates' rewards."""
    return (own_and_group + groupmates).astype(np.float32)


def advantages(returns: np.ndarray, baselines: np.ndarray) -> np.ndarray:
    """(T, S) targets minus (T, S) baselines, averaged over the signals: (T,)."""
    return (returns - baselines).mean(axis=1).astype(np.float32)


def total_loss(
    policy_loss: torch.Tensor,
    value_loss: torch.Tensor,
    baseline_loss: torch.Tensor,
    entropy: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    return policy_loss + VALUE_WEIGHT * (value_loss + BASELINE_WEIGHT * baseline_loss) - beta * entropy
