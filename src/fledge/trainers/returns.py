"""Return estimators of the on-policy trainers (PPO today, POCA next), per trajectory, in numpy.

- GAE: delta_t = r_t + gamma * v_{t+1} - v_t (v_T = bootstrap); A_t = sum_k (gamma*lambda)^k delta_{t+k};
  returns R_t = A_t + v_t.
- Discounted returns: R_t = r_t + gamma R_{t+1}, R_T = bootstrap.
Sums over time are one IIR filter (scipy's lfilter) over the reversed trajectory: no Python loop over time.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter


def discounted_cumsum(x: np.ndarray, discount: float) -> np.ndarray:
    """y_t = sum_k discount^k x_{t+k} along axis 0 (no Python loop over time)."""
    x = np.asarray(x, dtype=np.float64)
    return lfilter([1.0], [1.0, -discount], x[::-1], axis=0)[::-1]


def gae(
    rewards: np.ndarray, values: np.ndarray, bootstrap: float | np.ndarray, *, gamma: float, lambd: float
) -> tuple[np.ndarray, np.ndarray]:
    """Advantages and returns of one trajectory. rewards (T,), values (T,) -> ((T,), (T,)) float32."""
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    next_values = np.empty_like(values)
    next_values[:-1] = values[1:]
    next_values[-1] = bootstrap
    deltas = rewards + gamma * next_values - values
    advantages = discounted_cumsum(deltas, gamma * lambd)
    return advantages.astype(np.float32), (advantages + values).astype(np.float32)


def discounted_returns(rewards: np.ndarray, bootstrap: float, *, gamma: float) -> np.ndarray:
    """R_t = r_t + gamma R_{t+1}, R_T = bootstrap."""
    r = np.asarray(rewards, dtype=np.float64).copy()
    r[-1] += gamma * bootstrap
    return discounted_cumsum(r, gamma).astype(np.float32)
