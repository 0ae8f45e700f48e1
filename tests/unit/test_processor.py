"""The agent processor: rewards land on the right experience, trajectories cut and bootstrap correctly."""

from __future__ import annotations

import numpy as np

from fledge.envs.api import ActionSpec, BehaviorSpec, DecisionSteps, ObservationSpec, TerminalSteps
from fledge.networks.numpy_actor import ActOutput
from fledge.rollout.collector import collect_step
from fledge.rollout.processor import AgentProcessor, flat_observations

SPEC = BehaviorSpec([ObservationSpec.vector(1)], ActionSpec(1, ()))


class FakePolicy:
    """Value = observation; action = observation; log-prob = -observation."""

    def act(self, obs: np.ndarray, allowed: np.ndarray | None) -> ActOutput:
        n = len(obs)
        return ActOutput(
            continuous=obs.copy(),
            discrete=np.zeros((n, 0), np.int32),
            log_prob=-obs[:, 0],
            values=obs.copy(),
            entropy=np.zeros(n, np.float32),
        )

    def values(self, obs: np.ndarray) -> np.ndarray:
        return obs * 10


def dec(ids: list[int], obs: list[float], rew: list[float]) -> DecisionSteps:
    n = len(ids)
    return DecisionSteps(
        obs=[np.array(obs, np.float32).reshape(n, 1)],
        reward=np.array(rew, np.float32),
        agent_id=np.array(ids, np.int32),
        action_mask=None,
        group_id=np.zeros(n, np.int32),
        group_reward=np.zeros(n, np.float32),
    )


def term(ids: list[int], obs: list[float], rew: list[float], interrupted: list[bool]) -> TerminalSteps:
    n = len(ids)
    return TerminalSteps(
        obs=[np.array(obs, np.float32).reshape(n, 1)],
        reward=np.array(rew, np.float32),
        interrupted=np.array(interrupted, bool),
        agent_id=np.array(ids, np.int32),
        group_id=np.zeros(n, np.int32),
        group_reward=np.zeros(n, np.float32),
    )


def test_time_horizon_cut_bootstraps_with_next_value() -> None:
    p = AgentProcessor(spec=SPEC, time_horizon=2, n_values=1)
    pol = FakePolicy()
    empty = TerminalSteps.empty(SPEC)
    assert not collect_step(p, dec([7], [1.0], [0.0]), empty, pol).trajectories
    assert not collect_step(p, dec([7], [2.0], [0.5]), empty, pol).trajectories
    out = collect_step(p, dec([7], [3.0], [0.25]), empty, pol)
    (traj,) = out.trajectories
    assert traj.agent_id == 7
    np.testing.assert_allclose(traj.obs[:, 0], [1.0, 2.0])
    np.testing.assert_allclose(traj.rewards, [0.5, 0.25])
    np.testing.assert_allclose(traj.log_prob, [-1.0, -2.0])
    np.testing.assert_allclose(traj.bootstrap, [3.0])  # value of the next observation
    assert not traj.terminal and not traj.ends_episode


def test_terminal_and_interrupted_agents() -> None:
    p = AgentProcessor(spec=SPEC, time_horizon=10, n_values=1)
    pol = FakePolicy()
    empty = TerminalSteps.empty(SPEC)
    collect_step(p, dec([1, 2], [1.0, 2.0], [0.0, 0.0]), empty, pol)
    # agent 1 ends for real, agent 2 is interrupted; both restart at once (in both steps)
    out = collect_step(
        p, dec([1, 2], [5.0, 6.0], [0.0, 0.0]), term([1, 2], [3.0, 4.0], [-1.0, 0.5], [False, True]), pol
    )
    by_id = {t.agent_id: t for t in out.trajectories}
    assert by_id[1].terminal and by_id[1].ends_episode
    np.testing.assert_allclose(by_id[1].bootstrap, [0.0])
    np.testing.assert_allclose(by_id[1].rewards, [-1.0])
    assert not by_id[2].terminal and by_id[2].ends_episode
    np.testing.assert_allclose(by_id[2].bootstrap, [40.0])  # V(terminal obs) = 10 * 4
    np.testing.assert_allclose(sorted(out.episode_returns), [-1.0, 0.5])
    np.testing.assert_allclose(out.episode_lengths, [1, 1])
    # the new episode starts cleanly: the next trajectory holds only new-episode data
    out = collect_step(p, dec([1, 2], [7.0, 8.0], [0.1, 0.2]), term([], [], [], []), pol)
    assert not out.trajectories
    out = collect_step(p, dec([1], [9.0], [0.0]), term([2], [1.0], [1.0], [False]), pol)
    (t2,) = out.trajectories
    np.testing.assert_allclose(t2.obs[:, 0], [6.0, 8.0])
    np.testing.assert_allclose(t2.rewards, [0.2, 1.0])
    np.testing.assert_allclose(out.episode_returns, [1.2])
    np.testing.assert_allclose(out.episode_lengths, [2])


def test_agents_appear_and_disappear_with_shuffled_order() -> None:
    p = AgentProcessor(spec=SPEC, time_horizon=3, n_values=1, initial_slots=1)
    pol = FakePolicy()
    empty = TerminalSteps.empty(SPEC)
    collect_step(p, dec([10, 20], [1.0, 2.0], [0, 0]), empty, pol)
    collect_step(p, dec([20, 10, 30], [2.5, 1.5, 3.0], [0.2, 0.1, 0]), empty, pol)
    out = collect_step(p, dec([30], [3.5], [0.3]), term([10, 20], [0.0, 0.0], [1.0, 2.0], [False, False]), pol)
    by_id = {t.agent_id: t for t in out.trajectories}
    np.testing.assert_allclose(by_id[10].obs[:, 0], [1.0, 1.5])
    np.testing.assert_allclose(by_id[10].rewards, [0.1, 1.0])
    np.testing.assert_allclose(by_id[20].rewards, [0.2, 2.0])
    # agents that left free their slots for newcomers
    collect_step(p, dec([30, 40, 50], [4.0, 4.0, 5.0], [0, 0, 0]), empty, pol)
    assert len(p._slot_of) == 3


def test_next_observation_of_each_trajectory() -> None:
    p = AgentProcessor(spec=SPEC, time_horizon=2, n_values=1)
    pol = FakePolicy()
    empty = TerminalSteps.empty(SPEC)
    collect_step(p, dec([1, 2], [1.0, 2.0], [0, 0]), empty, pol)
    out = collect_step(p, dec([1, 2], [5.0, 6.0], [0, 0]), term([1], [3.0], [1.0], [True]), pol)
    (t1,) = out.trajectories
    np.testing.assert_allclose(t1.next_obs, [3.0])  # the terminal observation
    collect_step(p, dec([1, 2], [7.0, 8.0], [0, 0]), empty, pol)
    out = collect_step(p, dec([1, 2], [9.0, 10.0], [0, 0]), empty, pol)
    by_id = {t.agent_id: t for t in out.trajectories}
    np.testing.assert_allclose(by_id[1].next_obs, [9.0])  # the next decision's observation


def test_flat_observations_flattens_a_lone_camera() -> None:
    """A behavior whose only observation is a camera (Visual3DBall) is stored flat, like any other."""
    camera = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)
    np.testing.assert_array_equal(flat_observations([camera]), camera.reshape(2, 48))
    vector = np.ones((2, 5), np.float32)
    assert flat_observations([vector]) is vector
    both = flat_observations([vector, camera])
    assert both.shape == (2, 53) and (both[:, :5] == 1).all()
