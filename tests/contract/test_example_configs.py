"""Every ML-Agents example config, run: refused features are refused, and each setting without effect
gives its start-up warning exactly where the YAML sets it (and nowhere else).

The expectations are derived from the raw YAML alone (ML-Agents' defaults are written out here), not
from fledge's own tables. Each config runs through `fledge.api.run` for a few hundred steps on a
stand-in environment that offers the config's behaviors, each with a small built-in environment's
behavior spec; the configs' settings are kept, only max_steps, summary_freq and checkpoint_interval
are capped, and time_horizon (DungeonEscape's 10,000,000 would make the agent processor preallocate
gigabytes of trajectory rows).
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from conftest import SideBySide, shared_configs_dir
from fledge import api
from fledge.config import build_run_options, load_config_file
from fledge.envs import registry
from fledge.envs.api import BaseEnv
from fledge.errors import ConfigError

CONFIGS = shared_configs_dir()
FILES = sorted(CONFIGS.glob("**/*.yaml"))
STAND_IN = "MoveToGoal2D-Hybrid"  # continuous and discrete actions, short episodes
AGENTS = 4
MAX_STEPS, SUMMARY_FREQ, CHECKPOINT_INTERVAL, TIME_HORIZON = 400, 200, 300, 1000

# ML-Agents 1.1.0 defaults of the keys that fledge accepts without acting on them
ENV_DEFAULTS = {
    "base_port": 5005,
    "num_areas": 1,
    "timeout_wait": 60,
    "max_lifetime_restarts": 10,
    "restarts_rate_limit_n": 1,
    "restarts_rate_limit_period_s": 60,
}
ENGINE_DEFAULTS = {
    "width": 84,
    "height": 84,
    "quality_level": 5,
    "time_scale": 20.0,
    "target_frame_rate": -1,
    "capture_frame_rate": 60,
    "no_graphics": False,
    "no_graphics_monitor": False,
}


def merged_behaviors(raw: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each behavior's keys over default_settings (nested mappings merged)."""

    def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(dict(base))
        for key, value in over.items():
            out[key] = merge(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else value
        return out

    defaults = raw.get("default_settings") or {}
    return {name: merge(defaults, body or {}) for name, body in (raw.get("behaviors") or {}).items()}


def expected_refusals(raw: Mapping[str, Any]) -> set[str]:
    """The key paths a run must refuse: features this version of fledge does not have."""
    out = set()
    for name, body in merged_behaviors(raw).items():
        if body.get("behavioral_cloning"):
            # accepted; but its demo (ML-Agents' Unity project path, missing here, or fledge's shipped demo of
            # the same file name, recorded in that task) never fits the stand-in's spec: refused before training
            out.add(f"behaviors.{name}.behavioral_cloning.demo_path")
        for signal in body.get("reward_signals") or {}:
            if signal == "gail":  # its demo_path names a Unity project's .demo file, absent here
                out.add(f"behaviors.{name}.reward_signals.{signal}")
    return out


def expected_warnings(raw: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(behavior or "", key path) of every setting the YAML gives a value that has no effect here."""
    out: set[tuple[str, str]] = set()
    for name, body in merged_behaviors(raw).items():
        if body.get("threaded") is True:
            out.add((name, "threaded"))
        hyper = body.get("hyperparameters") or {}
        learned_signals = set(body.get("reward_signals") or {}) - {"extrinsic"}
        if body.get("trainer_type") == "sac" and "reward_signal_steps_per_update" in hyper and not learned_signals:
            if float(hyper["reward_signal_steps_per_update"]) != float(hyper.get("steps_per_update", 1.0)):
                out.add((name, "hyperparameters.reward_signal_steps_per_update"))
        if ((body.get("reward_signals") or {}).get("extrinsic") or {}).get("network_settings"):
            out.add((name, "reward_signals.extrinsic.network_settings"))
        self_play = body.get("self_play")
        if self_play:  # the stand-in behaviors have no team ids: self-play has a single team
            out.add((name, "self_play"))
        if self_play:  # the run is capped at MAX_STEPS: a team_change above it never happens, which is warned
            team_change = self_play.get("team_change", 5 * self_play.get("save_steps", 20000))
            if team_change > MAX_STEPS:
                out.add((name, "self_play.team_change"))
        net = body.get("network_settings") or {}  # the stand-in environments have no camera and no goal signal
        if net.get("vis_encode_type", "simple") != "simple":
            out.add((name, "network_settings.vis_encode_type"))
        if net.get("goal_conditioning_type", "hyper") != "hyper":
            out.add((name, "network_settings.goal_conditioning_type"))
    env = raw.get("env_settings") or {}
    for key, default in ENV_DEFAULTS.items():  # the run gets an environment object: no workers, no restarts
        if key in env and env[key] != default:
            out.add(("", f"env_settings.{key}"))
    if env.get("worker_processes") is True and env.get("num_envs", 1) <= 1:
        out.add(("", "env_settings.worker_processes"))
    for key, value in (raw.get("engine_settings") or {}).items():
        if value != ENGINE_DEFAULTS[key]:
            out.add(("", f"engine_settings.{key}"))
    if (raw.get("checkpoint_settings") or {}).get("train_model") is True:
        out.add(("", "checkpoint_settings.train_model"))
    return out


def parse_warning(message: str) -> tuple[str, str]:
    behavior = re.match(r"Behavior '([^']+)': ([\w.]+)", message)
    if behavior:
        return behavior.group(1), behavior.group(2)
    section = re.match(r"((?:env|engine|checkpoint)_settings\.\w+): ", message)
    if section:
        return "", section.group(1)
    return "?", message  # any other warning is unexpected


class ParameterStandIn(SideBySide):
    """A stand-in that reads every environment parameter (as a Unity scene would) and keeps what it got."""

    def __init__(self, parts: dict[str, BaseEnv]) -> None:
        super().__init__(parts)
        self.received: list[dict[str, Any]] = []

    def environment_parameter_names(self) -> frozenset[str] | None:
        return None

    def set_environment_parameters(self, draws: Mapping[str, Mapping[str, Any]]) -> None:
        self.received.append({name: dict(draw) for name, draw in draws.items()})


def stand_in(names: list[str], seed: int) -> ParameterStandIn:
    """The config's behaviors, each a small built-in environment under the behavior's name."""
    return ParameterStandIn(
        {name: registry.make(STAND_IN, seed=seed + i, num_agents=AGENTS) for i, name in enumerate(names)}
    )


def capped(raw: dict[str, Any], results: Path) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    for body in [*(out.get("behaviors") or {}).values(), out.get("default_settings")]:
        if isinstance(body, dict):
            body["max_steps"] = min(float(body.get("max_steps", MAX_STEPS)), MAX_STEPS)
            body["summary_freq"] = min(int(body.get("summary_freq", SUMMARY_FREQ)), SUMMARY_FREQ)
            body["checkpoint_interval"] = min(
                int(body.get("checkpoint_interval", CHECKPOINT_INTERVAL)), CHECKPOINT_INTERVAL
            )
            body["time_horizon"] = min(int(body.get("time_horizon", TIME_HORIZON)), TIME_HORIZON)
    env = out.setdefault("env_settings", {})
    env["seed"] = 1
    out["checkpoint_settings"] = {"run_id": "example", "results_dir": str(results)}
    return out


def test_the_examples_are_there_and_ninety_three_are_accepted() -> None:
    if not FILES:
        pytest.skip(f"the shared ML-Agents configs are not at {CONFIGS}")
    accepted = [p for p in FILES if not expected_refusals(load_config_file(p))]
    assert len(FILES) >= 100
    # 60 before memory; + ppo/Hallway, ppo/VisualHallway, ppo/VisualBasketBall, sac/Hallway, sac/VisualHallway;
    # + self-play with PPO: poca/Tanks (a PPO config), ppo/BattleFoodCollector, CubeWars, CubeWarsV3,
    # StrikersVsGoalie, Tennis, TicTacToe; + POCA: poca/DungeonEscape, Particles, PushBlockCollab, SoccerTwos,
    # SoccerTwos-5M, SpawnCollector, StrikersVsGoalie, SymbolSelectComms (BatonPass20, SmallSpawnCollector and
    # Soccer stay refused for their environment_parameters); + environment parameters and curricula: poca/Soccer,
    # poca/BatonPass20, poca/SmallSpawnCollector, ppo/3DBallMulti_distance, 3DBallMulti_time, 3DBallMulti_power,
    # 3DBallMulti_power_ep, 3DBall_randomize, BatonPass20, Sorter, Sorter_curriculum, WallJump_curriculum,
    # WallJumpCollab; + reward signals: ppo/Pyramids, PyramidRND, PyramidsRND, VisualPyramids
    assert len(accepted) == 97


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_example_config_is_refused_or_warns_exactly_where_due(
    path: Path, tmp_path: Path, fledge_log: list[logging.LogRecord]
) -> None:
    raw = load_config_file(path)
    refusals = expected_refusals(raw)
    options = build_run_options(capped(raw, tmp_path))
    names = list(options.behaviors)
    env = stand_in(names, seed=1)
    fledge_log.clear()  # config parsing may warn (deprecated keys); the run's start-up is what is checked
    try:
        if refusals:
            with pytest.raises(ConfigError) as info:
                api.run(options, env=env, display="none")
            message = str(info.value)
            assert any(key in message for key in refusals), (message, refusals)
            assert not list(tmp_path.glob("**/*.pt")), "a refused run wrote a checkpoint"
            return
        result = api.run(options, env=env, display="none")
    finally:
        env.close()
    warnings = [r.getMessage() for r in fledge_log if r.levelno >= logging.WARNING]
    found = [parse_warning(w) for w in warnings]
    assert len(found) == len(set(found)), f"a warning was given twice: {warnings}"
    assert set(found) == expected_warnings(raw), warnings
    for name in names:
        assert result.behaviors[name].steps >= MAX_STEPS
        assert (tmp_path / "example" / name / "checkpoint.pt").is_file()
    parameters = raw.get("environment_parameters") or {}
    if parameters:  # the first draws reach the environment before its first reset, one per parameter
        assert env.received and set(env.received[0]) == set(parameters)
        status = (tmp_path / "example" / "run_logs" / "training_status.json").read_text()
        assert all(f'"{name}"' in status for name in parameters)
