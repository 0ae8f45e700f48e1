"""`.demo` records -> `ExpertData`: what behavioral cloning and GAIL learn from.

Each record is one agent's step: the agent info it reported (observations, the reward received since
its previous decision, `done`) and the action it then took. Records are paired per agent (by the info's
`id`, so files that interleave several agents read correctly): the row of a decision is its
observations and action, with the reward and `done` of that agent's NEXT record (what the action led
to). A record with `done` closes an episode and gives no row (its action was never applied); an agent's
last record without a successor gives no row either.

The behavior spec of a demonstration comes from its brain parameters and the observations of its first
record (`convert.behavior_spec_from_proto`); `load_demonstrations` refuses a demonstration whose spec
differs from the behavior's, naming both.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fledge.envs.api import BehaviorSpec
from fledge.envs.unity.convert import behavior_spec_from_proto, decode_png_observation
from fledge.envs.unity.protocol.demonstration_pb2 import AgentInfoActionPairProto
from fledge.envs.unity.protocol.observation_pb2 import PNG
from fledge.imitation.demo_file import DemoFile, DemoFileError, demo_paths, read_demo_file
from fledge.imitation.expert import ExpertData

__all__ = [
    "SHIPPED_DEMOS",
    "check_demonstrations",
    "demo_spec",
    "describe_spec",
    "expert_from_demo",
    "load_demonstrations",
    "resolve_demo_path",
    "specs_match",
]

log = logging.getLogger("fledge")

#: Demonstrations of built-in tasks shipped with fledge (src/fledge/configs/demos/).
SHIPPED_DEMOS = Path(__file__).resolve().parents[1] / "configs" / "demos"


def resolve_demo_path(path: str | Path, where: str) -> Path:
    """`path` itself when it exists; else, when fledge ships a demonstration of the same file name (ML-Agents'
    example configs name `Project/Assets/ML-Agents/Examples/<Env>/Demos/<File>.demo`), that one, with a
    warning; else `path` (the reader then says it is missing)."""
    path = Path(path)
    if path.exists():
        return path
    shipped = SHIPPED_DEMOS / path.name
    if path.suffix == ".demo" and shipped.is_file():
        log.warning("%s: %s does not exist; using fledge's shipped demonstration %s.", where, path, shipped)
        return shipped
    return path


def demo_spec(demo: DemoFile, where: str) -> BehaviorSpec:
    if not demo.pairs:
        raise DemoFileError(f"{where}: the demonstration holds no recorded step; record a longer demonstration.")
    spec = behavior_spec_from_proto(demo.brain, demo.pairs[0].agent_info)
    if not spec.observation_specs or (spec.action_spec.continuous_size == 0 and not spec.action_spec.discrete_branches):
        raise DemoFileError(
            f"{where}: the records parse, but name no actions or no observations ({describe_spec(spec)}); this is "
            "not an ML-Agents .demo file or it is damaged."
        )
    return spec


def describe_spec(spec: BehaviorSpec) -> str:
    shapes = [tuple(int(d) for d in o.shape) for o in spec.observation_specs]
    return f"observations {shapes}, actions ({spec.action_spec})"


def specs_match(a: BehaviorSpec, b: BehaviorSpec) -> bool:
    shapes_a = [tuple(int(d) for d in o.shape) for o in a.observation_specs]
    shapes_b = [tuple(int(d) for d in o.shape) for o in b.observation_specs]
    return shapes_a == shapes_b and (a.action_spec.continuous_size, tuple(a.action_spec.discrete_branches)) == (
        b.action_spec.continuous_size,
        tuple(b.action_spec.discrete_branches),
    )


def _observation(
    pair: AgentInfoActionPairProto, index: int, shape: tuple[int, ...], where: str, row: int
) -> np.ndarray:
    infos = pair.agent_info.observations
    if len(infos) <= index:
        raise DemoFileError(
            f"{where}: step record {row} has {len(infos)} observations, the demonstration's spec {index + 1} or more; "
            "the file is damaged."
        )
    obs = infos[index]
    if obs.compression_type == PNG:
        try:
            return decode_png_observation(obs.compressed_data, shape, obs.compressed_channel_mapping)
        except (ValueError, OSError) as exc:
            raise DemoFileError(
                f"{where}: step record {row}, observation {index} is not a readable PNG image ({exc})."
            ) from None
    data = np.asarray(obs.float_data.data, np.float32)
    if data.size != int(np.prod(shape)):
        raise DemoFileError(
            f"{where}: step record {row}, observation {index} has {data.size} values; its shape {shape} needs "
            f"{int(np.prod(shape))}. The file is damaged."
        )
    return data.reshape(shape)


def expert_from_demo(demo: DemoFile, spec: BehaviorSpec, where: str) -> ExpertData:
    """The rows of one decoded demonstration (see the module docstring for the pairing)."""
    action = spec.action_spec
    branches = tuple(action.discrete_branches)
    mask_size = sum(branches)
    shapes = [tuple(int(d) for d in o.shape) for o in spec.observation_specs]
    last_of_agent: dict[int, int] = {}
    successor: dict[int, int] = {}
    for i, pair in enumerate(demo.pairs):
        agent = int(pair.agent_info.id)
        if agent in last_of_agent:
            successor[last_of_agent[agent]] = i
        last_of_agent[agent] = i
    rows = [i for i, p in enumerate(demo.pairs) if not p.agent_info.done and i in successor]
    n = len(rows)
    obs = [np.empty((n,) + s, np.float32) for s in shapes]
    cont = np.zeros((n, action.continuous_size), np.float32)
    disc = np.zeros((n, len(branches)), np.int64)
    rewards = np.zeros(n, np.float32)
    done = np.zeros(n, bool)
    masks = np.ones((n, mask_size), bool)
    for r, i in enumerate(rows):
        pair = demo.pairs[i]
        nxt = demo.pairs[successor[i]].agent_info
        for k, shape in enumerate(shapes):
            obs[k][r] = _observation(pair, k, shape, where, i)
        act = pair.action_info
        c = list(act.continuous_actions)
        d = list(act.discrete_actions)
        if not c and not d and len(act.vector_actions_deprecated):  # an older recording: one flat field
            flat = list(act.vector_actions_deprecated)
            c, d = flat[: action.continuous_size], [int(v) for v in flat[action.continuous_size :]]
        if len(c) != action.continuous_size or len(d) != len(branches):
            raise DemoFileError(
                f"{where}: step record {i} has {len(c)} continuous and {len(d)} discrete actions; the demonstration's "
                f"spec has {action.continuous_size} and {len(branches)}. The file is damaged."
            )
        cont[r] = c
        disc[r] = d
        for b, (value, size) in enumerate(zip(d, branches)):
            if not 0 <= value < size:
                raise DemoFileError(
                    f"{where}: step record {i} chose action {value} on branch {b}, which has {size} actions."
                )
        if len(pair.agent_info.action_mask) == mask_size and mask_size:
            masks[r] = ~np.asarray(pair.agent_info.action_mask, bool)  # the file's True = masked
        rewards[r] = nxt.reward
        done[r] = nxt.done
    return ExpertData(
        spec=spec,
        obs=obs,
        continuous_actions=cont,
        discrete_actions=disc,
        rewards=rewards,
        done=done,
        action_masks=masks,
    )


def _concatenate(parts: Sequence[ExpertData], spec: BehaviorSpec) -> ExpertData:
    return ExpertData(
        spec=spec,
        obs=[np.concatenate([p.obs[k] for p in parts]) for k in range(len(spec.observation_specs))],
        continuous_actions=np.concatenate([p.continuous_actions for p in parts]),
        discrete_actions=np.concatenate([p.discrete_actions for p in parts]),
        rewards=np.concatenate([p.rewards for p in parts]),
        done=np.concatenate([p.done for p in parts]),
        action_masks=np.concatenate([p.action_masks for p in parts]),
    )


def load_demonstrations(path: str | Path, spec: BehaviorSpec | None, where: str) -> ExpertData:
    """Every demonstration at `path` (a `.demo` file, or a folder of them) as one ExpertData.

    With `spec`, each file must have been recorded for the same observation shapes and action spec;
    `where` says who asked (e.g. "behavior 'Basic': behavioral_cloning.demo_path") and starts every error.
    """
    parts: list[ExpertData] = []
    first: tuple[Path, BehaviorSpec] | None = None
    for file in demo_paths(resolve_demo_path(path, where), where):
        label = f"{where}: {file}"
        demo = read_demo_file(file, label)
        found = demo_spec(demo, label)
        if spec is not None and not specs_match(found, spec):
            raise DemoFileError(
                f"{label} was recorded for {describe_spec(found)}, but the behavior has {describe_spec(spec)}. "
                "Use a demonstration recorded in this environment (fledge play ... --record-demo)."
            )
        if first is not None and not specs_match(found, first[1]):
            raise DemoFileError(
                f"{label} was recorded for {describe_spec(found)}, but {first[0]} in the same folder for "
                f"{describe_spec(first[1])}; keep one behavior's demonstrations per folder."
            )
        if first is None:
            first = (file, found)
        parts.append(expert_from_demo(demo, spec if spec is not None else found, label))
    assert first is not None
    data = _concatenate(parts, spec if spec is not None else first[1])
    if data.steps == 0:
        raise DemoFileError(f"{where}: {path} holds no complete decision step; record a longer demonstration.")
    return data


def check_demonstrations(path: str | Path, where: str) -> None:
    """Refuse, before a run builds anything, a demo_path that is missing, empty, damaged or not a demonstration
    (the behavior's spec is checked when its trainer is built)."""
    for file in demo_paths(resolve_demo_path(path, where), where):
        label = f"{where}: {file}"
        demo_spec(read_demo_file(file, label), label)
