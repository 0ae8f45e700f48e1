"""Group assembling (rollout/groups.py) over a real processor in group mode: groupmates' rows, their rewards,
the bootstrap rule (a group ends when all its agents are done), early-dead agents, group returns."""

from __future__ import annotations

import numpy as np

from fledge.envs.api import ActionSpec, BehaviorSpec, DecisionSteps, ObservationSpec, TerminalSteps
from fledge.networks.numpy_actor import ActOutput
from fledge.rollout.groups import GroupAssembler, group_key
from fledge.rollout.processor import AgentProcessor, StepOutcome, Trajectory

SPEC = BehaviorSpec(observation_specs=(ObservationSpec.vector(2),), action_spec=ActionSpec.create_discrete((3,)))


def decide(
    ids: list[int], groups: list[int], *, reward: list[float] | None = None, grew: list[float] | None = None
) -> DecisionSteps:
    n = len(ids)
    return DecisionSteps(
        obs=[np.array([[float(a), 1.0] for a in ids], np.float32).reshape(n, 2)],
        reward=np.array(reward or [0.0] * n, np.float32),
        agent_id=np.array(ids, np.int32),
        action_mask=None,
        group_id=np.array(groups, np.int32),
        group_reward=np.array(grew or [0.0] * n, np.float32),
    )


def end(
    ids: list[int], groups: list[int], *, reward: list[float], grew: list[float], interrupted: bool = False
) -> TerminalSteps:
    n = len(ids)
    return TerminalSteps(
        obs=[np.array([[float(a), 9.0] for a in ids], np.float32).reshape(n, 2)],
        reward=np.array(reward, np.float32),
        interrupted=np.full(n, interrupted),
        agent_id=np.array(ids, np.int32),
        group_id=np.array(groups, np.int32),
        group_reward=np.array(grew, np.float32),
    )


def step(proc: AgentProcessor, d: DecisionSteps, t: TerminalSteps) -> StepOutcome:
    n = len(d.agent_id)
    out = ActOutput(
        continuous=np.zeros((n, 0), np.float32),
        discrete=(d.agent_id % 3).astype(np.int32).reshape(n, 1),
        log_prob=np.zeros(n, np.float32),
        values=np.zeros((n, 1), np.float32),
        entropy=np.zeros(n, np.float32),
    )
    obs = d.obs[0] if n else None
    return proc.process(
        d,
        t,
        obs=obs,
        allowed=None,
        out=out if n else None,
        terminal_obs=t.obs[0] if len(t.agent_id) else None,
        bootstrap=np.zeros((len(t.agent_id), 1), np.float32) if len(t.agent_id) else None,
    )


def run(
    steps: list[tuple[DecisionSteps, TerminalSteps]], horizon: int = 10, *, mates_observed: bool = True
) -> tuple[GroupAssembler, list[Trajectory], list[float]]:
    proc = AgentProcessor(spec=SPEC, time_horizon=horizon, n_values=1, groups=True, source="B")
    asm = GroupAssembler(obs_size=2, act_size=3, keep=50, mates_observed=mates_observed)
    trajs: list[Trajectory] = []
    finished: list[float] = []
    for d, t in steps:
        out = step(proc, d, t)
        assert out.group_step is not None
        finished += asm.record(out.group_step)
        trajs += out.trajectories
    return asm, trajs, finished


NONE = TerminalSteps.empty(SPEC)


def test_early_dead_agent_is_bootstrapped_by_the_group_that_plays_on_and_the_group_ends_when_all_are_done() -> None:
    # agents 0, 1, 2 in group 7; agent 0 dies after its 2nd decision; 1 and 2 escape after the 3rd with group reward 1
    steps = [
        (decide([0, 1, 2], [7, 7, 7]), NONE),
        (decide([0, 1, 2], [7, 7, 7], reward=[0.5, 0.25, 0.0]), NONE),
        (decide([1, 2], [7, 7]), end([0], [7], reward=[-1.0], grew=[0.0])),
        (decide([], []), end([1, 2], [7, 7], reward=[0.0, 2.0], grew=[1.0, 1.0])),
    ]
    asm, trajs, finished = run(steps)
    by_agent = {t.agent_id: t for t in trajs}
    dead = asm.context(by_agent[0])
    assert dead is not None
    # its rows: itself first, then both groupmates (observation = [id, 1])
    np.testing.assert_array_equal(dead.members[0, :, 0], [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(dead.members_mask[:2], [[1, 1, 1], [1, 1, 1]])
    # groupmates' observations and one-hot actions (agent 1 takes action 1, agent 2 action 2)
    np.testing.assert_array_equal(dead.others[0, 0], [1.0, 1.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(dead.others[0, 1], [2.0, 1.0, 0.0, 0.0, 1.0])
    # groupmates' individual rewards per step: step 0 paid 0.25 + 0 to the mates, step 1 nothing
    np.testing.assert_allclose(dead.mate_rewards, [0.25, 0.0])
    np.testing.assert_allclose(by_agent[0].rewards, [0.5, -1.0])  # own (+ group reward 0)
    # the group plays on after its death: bootstrap with the group of agents 1 and 2, not 0
    assert not dead.group_done
    np.testing.assert_array_equal(dead.members[-1, :2, 0], [1.0, 2.0])
    np.testing.assert_array_equal(dead.members_mask[-1], [1, 1, 0])
    # the survivors: absent member masked from the 3rd step on; the whole group is done at the end
    alive = asm.context(by_agent[2])
    assert alive is not None
    np.testing.assert_array_equal(alive.members_mask[:3], [[1, 1, 1], [1, 1, 1], [1, 1, 0]])
    np.testing.assert_array_equal(alive.members[2, :2, 0], [2.0, 1.0])  # self first
    np.testing.assert_allclose(alive.mate_rewards, [0.75, -1.0, 0.0])  # agents 0 and 1, then 0 dying, then 1
    np.testing.assert_allclose(by_agent[2].rewards, [0.0, 0.0, 3.0])  # own 2 + group reward 1
    assert alive.group_done
    # the group's cumulative reward: every individual reward plus the group reward once
    assert finished == [0.5 + 0.25 - 1.0 + 2.0 + 1.0]


def test_groupmate_rows_without_observations_hold_the_actions_and_the_members_hold_the_observations() -> None:
    steps = [
        (decide([0, 1, 2], [7, 7, 7]), NONE),
        (decide([0, 1, 2], [7, 7, 7], reward=[0.5, 0.25, 0.0]), NONE),
        (decide([1, 2], [7, 7]), end([0], [7], reward=[-1.0], grew=[0.0])),
        (decide([], []), end([1, 2], [7, 7], reward=[0.0, 2.0], grew=[1.0, 1.0])),
    ]
    full_asm, full_trajs, _ = run(steps)
    asm, trajs, _ = run(steps, mates_observed=False)
    assert len(trajs) == len(full_trajs) == 3
    for full_traj, traj in zip(full_trajs, trajs):
        full, short = full_asm.context(full_traj), asm.context(traj)
        assert full is not None and short is not None
        assert short.others.shape[2] == 3  # the one-hot actions alone
        np.testing.assert_array_equal(short.others, full.others[:, :, 2:])
        # the groupmates' observations the critic reads instead: the members' rows after the agent's own
        present = full.others_mask > 0
        np.testing.assert_array_equal(full.others[:, :, :2][present], full.members[:-1, 1:][present])
        np.testing.assert_array_equal(short.others_mask, full.members_mask[:-1, 1:])
        np.testing.assert_array_equal(short.members, full.members)
        assert short.group_done == full.group_done


def test_interrupted_group_bootstraps_from_its_terminal_observations() -> None:
    steps = [
        (decide([4, 5], [3, 3]), NONE),
        (decide([], []), end([4, 5], [3, 3], reward=[0.0, 0.0], grew=[0.0, 0.0], interrupted=True)),
    ]
    asm, trajs, _ = run(steps)
    ctx = asm.context(trajs[0])
    assert ctx is not None and not ctx.group_done
    np.testing.assert_array_equal(ctx.members[-1, :, 1], [9.0, 9.0])  # the terminal observations


def test_cut_trajectory_bootstraps_from_the_next_decision_and_agents_without_group_are_alone() -> None:
    steps = [(decide([0, 1], [0, 0]), NONE) for _ in range(4)]
    asm, trajs, finished = run(steps, horizon=2)
    assert len(trajs) == 2 and finished == []
    ctx = asm.context(trajs[0])
    assert ctx is not None and asm.width == 1
    assert ctx.others.shape == (2, 0, 5) and not ctx.group_done
    np.testing.assert_array_equal(ctx.members[:, 0, 0], [trajs[0].agent_id] * 3)
    assert group_key(0, 5) != group_key(0, 6) and group_key(4, 5) == group_key(4, 6)


def test_rows_no_longer_kept_give_no_context() -> None:
    proc = AgentProcessor(spec=SPEC, time_horizon=10, n_values=1, groups=True, source="B")
    asm = GroupAssembler(obs_size=2, act_size=3, keep=2)
    trajs = []
    for k in range(5):
        t = end([0], [1], reward=[0.0], grew=[0.0]) if k == 4 else NONE
        out = step(proc, decide([0] if k < 4 else [], [1] if k < 4 else []), t)
        assert out.group_step is not None
        asm.record(out.group_step)
        trajs += out.trajectories
    assert asm.context(trajs[0]) is None


def test_processor_without_groups_records_nothing_more() -> None:
    proc = AgentProcessor(spec=SPEC, time_horizon=10, n_values=1)
    out = step(proc, decide([0, 1], [2, 2]), NONE)
    assert out.group_step is None
    out = step(proc, decide([], []), end([0, 1], [2, 2], reward=[1.0, 1.0], grew=[0.5, 0.5]))
    assert all(t.groups is None and t.steps is None for t in out.trajectories)
    np.testing.assert_allclose(out.trajectories[0].rewards, [1.5])  # own + group reward, as before


def test_worker_copies_make_group_ids_global_and_keep_no_group() -> None:
    from fledge.rollout.workers import ID_STRIDE, _global_groups

    merged = _global_groups([np.array([1, 1, 0], np.int32), np.array([1, 2, 0], np.int32)], ID_STRIDE)
    assert merged.tolist() == [1, 1, 0, 1 + ID_STRIDE, 2 + ID_STRIDE, 0]


def test_a_group_that_restarts_in_the_step_it_ends_is_done_for_the_trajectories_that_end_it() -> None:
    """As Unity agents (and the early-dead agent re-enabled at the group's reset) do: the members that decide in
    the step the group ends start the new episode; they do not keep the old one going."""
    steps = [
        (decide([0, 1, 2], [7, 7, 7]), NONE),
        (decide([1, 2], [7, 7]), end([0], [7], reward=[0.0], grew=[0.0])),
        (decide([0, 1, 2], [7, 7, 7]), end([1, 2], [7, 7], reward=[0.0, 0.0], grew=[1.0, 1.0])),
    ]
    asm, trajs, _ = run(steps)
    last = [t for t in trajs if t.agent_id == 2][-1]
    ctx = asm.context(last)
    assert ctx is not None
    assert ctx.group_done  # bootstrap 0: the whole group ended for real
