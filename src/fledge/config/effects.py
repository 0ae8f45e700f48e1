"""Which settings take effect in a run, and the start-up warnings for those that do not.

Every key of the schema is listed in `FIELD_EFFECTS` as one of:
- "honoured": fledge acts on it;
- "conditional": honoured where it applies (e.g. worker keys when worker processes run), warned otherwise;
- "warned": accepted, but it has no effect here; a non-default value gives one warning at start-up
  that names it and says why (a configuration dumped by fledge, with every default, never warns);
- "refused": the feature behind it is not available; a run refuses it with a clear error before training.
tests/unit/test_config_effects.py walks the schema and fails when a key is missing from the table, so
a new key must be honoured, warned or refused on purpose.

`effect_warnings` is pure: it reads the options and a small description of the environment and returns
the warning lines; the run (and `fledge check`) log them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal

from fledge.config.schema import (
    NetworkSettings,
    RunOptions,
    SACSettings,
    TrainerSettings,
)
from fledge.config.sections import EngineSettings, EnvironmentSettings
from fledge.envs.behavior_id import behavior_ids_by_brain, parse_behavior_id
from fledge.envs.unity.launcher import EDITOR_NAME

__all__ = [
    "FIELD_EFFECTS",
    "REFUSED_MODELS",
    "Effect",
    "effect_warnings",
    "environment_kind",
    "uses_copy_pool",
    "uses_worker_processes",
]

Effect = Literal["honoured", "conditional", "warned", "refused"]

_H: Effect = "honoured"
_C: Effect = "conditional"
_W: Effect = "warned"
_R: Effect = "refused"

FIELD_EFFECTS: Mapping[str, Effect] = MappingProxyType(
    {
        # top level
        "RunOptions.behaviors": _H,
        "RunOptions.default_settings": _H,
        "RunOptions.env_settings": _H,
        "RunOptions.engine_settings": _H,  # a section; its keys apply to Unity players
        "RunOptions.environment_parameters": _H,  # fledge.curriculum; every environment family receives the draws
        "RunOptions.checkpoint_settings": _H,
        "RunOptions.torch_settings": _H,
        "RunOptions.debug": _H,  # `fledge learn`: debug logging, errors with their traceback (as --debug)
        # one behavior
        "TrainerSettings.trainer_type": _H,  # ppo, sac, poca (trainers/registry.py)
        "TrainerSettings.hyperparameters": _H,
        "TrainerSettings.network_settings": _H,
        "TrainerSettings.reward_signals": _H,  # extrinsic, curiosity, rnd, gail (rewards/)
        "TrainerSettings.init_path": _H,
        "TrainerSettings.keep_checkpoints": _H,
        "TrainerSettings.even_checkpoints": _H,
        "TrainerSettings.checkpoint_interval": _H,
        "TrainerSettings.max_steps": _H,
        "TrainerSettings.time_horizon": _H,
        "TrainerSettings.summary_freq": _H,
        "TrainerSettings.threaded": _W,
        "TrainerSettings.self_play": _H,  # the ghost trainer (trainers/ghost/)
        "TrainerSettings.behavioral_cloning": _H,  # PPO and SAC (imitation/bc.py); preflight checks the demos
        # PPO
        "PPOSettings.batch_size": _H,
        "PPOSettings.buffer_size": _H,
        "PPOSettings.learning_rate": _H,
        "PPOSettings.learning_rate_schedule": _H,
        "PPOSettings.beta": _H,
        "PPOSettings.beta_schedule": _H,
        "PPOSettings.epsilon": _H,
        "PPOSettings.epsilon_schedule": _H,
        "PPOSettings.lambd": _H,
        "PPOSettings.num_epoch": _H,
        "PPOSettings.shared_critic": _H,
        "POCASettings.batch_size": _H,
        "POCASettings.buffer_size": _H,
        "POCASettings.learning_rate": _H,
        "POCASettings.learning_rate_schedule": _H,
        "POCASettings.beta": _H,
        "POCASettings.beta_schedule": _H,
        "POCASettings.epsilon": _H,
        "POCASettings.epsilon_schedule": _H,
        "POCASettings.lambd": _H,
        "POCASettings.num_epoch": _H,
        # SAC
        "SACSettings.batch_size": _H,
        "SACSettings.buffer_size": _H,
        "SACSettings.learning_rate": _H,
        "SACSettings.learning_rate_schedule": _H,
        "SACSettings.buffer_init_steps": _H,
        "SACSettings.tau": _H,
        "SACSettings.steps_per_update": _H,
        "SACSettings.save_replay_buffer": _H,
        "SACSettings.init_entcoef": _H,
        "SACSettings.reward_signal_steps_per_update": _C,  # with curiosity, rnd or gail: their update loop
        # networks
        "NetworkSettings.normalize": _H,
        "NetworkSettings.hidden_units": _H,
        "NetworkSettings.num_layers": _H,
        "NetworkSettings.vis_encode_type": _H,  # the encoder of visual observations
        "NetworkSettings.memory": _H,  # every trainer type: PPO, SAC and POCA
        "NetworkSettings.goal_conditioning_type": _H,  # hypernetwork or concatenated goals
        "NetworkSettings.deterministic": _H,
        "MemorySettings.memory_size": _H,
        "MemorySettings.sequence_length": _H,
        # self-play (trainers/ghost/)
        "SelfPlaySettings.save_steps": _H,
        "SelfPlaySettings.team_change": _H,
        "SelfPlaySettings.swap_steps": _H,
        "SelfPlaySettings.window": _H,
        "SelfPlaySettings.play_against_latest_model_ratio": _H,
        "SelfPlaySettings.initial_elo": _H,
        "SelfPlaySettings.elo_k_factor": _H,  # fledge's addition (ML-Agents: K = 1, the default)
        # behavioral cloning (imitation/bc.py)
        "BehavioralCloningSettings.demo_path": _H,
        "BehavioralCloningSettings.steps": _H,
        "BehavioralCloningSettings.strength": _H,
        "BehavioralCloningSettings.samples_per_update": _H,
        "BehavioralCloningSettings.num_epoch": _H,
        "BehavioralCloningSettings.batch_size": _H,
        # the extrinsic reward signal
        "ExtrinsicSettings.gamma": _H,
        "ExtrinsicSettings.strength": _H,
        "ExtrinsicSettings.network_settings": _W,
        # the learned reward signals (rewards/); encoding_size is resolved into network_settings by the schema
        **{
            f"{model}.{key}": _H
            for model in ("CuriositySettings", "RNDSettings", "GAILSettings")
            for key in ("gamma", "strength", "network_settings", "learning_rate", "encoding_size")
        },
        "GAILSettings.use_actions": _H,
        "GAILSettings.use_vail": _H,
        "GAILSettings.demo_path": _H,
        # env_settings
        "EnvironmentSettings.env_path": _H,
        "EnvironmentSettings.env_args": _H,
        "EnvironmentSettings.base_port": _C,  # Unity players only
        "EnvironmentSettings.num_envs": _H,
        "EnvironmentSettings.num_areas": _C,  # built-in environments: areas multiply the agents
        "EnvironmentSettings.timeout_wait": _C,  # with worker processes or Unity players
        "EnvironmentSettings.seed": _H,
        "EnvironmentSettings.max_lifetime_restarts": _C,  # with num_envs copies fledge restarts
        "EnvironmentSettings.restarts_rate_limit_n": _C,  # with num_envs copies fledge restarts
        "EnvironmentSettings.restarts_rate_limit_period_s": _C,  # with num_envs copies fledge restarts
        "EnvironmentSettings.worker_processes": _C,  # with num_envs > 1
        "EnvironmentSettings.workers": _H,  # fledge's: local, processes or ray (rollout/ray_workers.py)
        "EnvironmentSettings.ray_address": _C,  # with workers: ray
        "EnvironmentSettings.ray_num_cpus": _C,  # with workers: ray
        "EnvironmentSettings.ray_envs_per_worker": _C,  # with workers: ray
        # engine_settings: Unity players only (the Editor: through the engine configuration channel)
        "EngineSettings.width": _C,
        "EngineSettings.height": _C,
        "EngineSettings.quality_level": _C,
        "EngineSettings.time_scale": _C,
        "EngineSettings.target_frame_rate": _C,
        "EngineSettings.capture_frame_rate": _C,
        "EngineSettings.no_graphics": _C,
        "EngineSettings.no_graphics_monitor": _C,
        # checkpoint_settings
        "CheckpointSettings.run_id": _H,
        "CheckpointSettings.initialize_from": _H,
        "CheckpointSettings.load_model": _H,  # deprecated alias, folded into resume with a warning
        "CheckpointSettings.resume": _H,
        "CheckpointSettings.force": _H,
        "CheckpointSettings.train_model": _W,
        "CheckpointSettings.inference": _H,
        "CheckpointSettings.results_dir": _H,
        "CheckpointSettings.resume_from": _H,
        "CheckpointSettings.onnx_opset": _H,
        # torch_settings
        "TorchSettings.device": _H,
        # environment_parameters (fledge.curriculum): every entry is a curriculum of one or more lessons
        "EnvironmentParameterSettings.curriculum": _H,
        "Lesson.name": _H,  # logged when the lesson starts
        "Lesson.value": _H,
        "Lesson.completion_criteria": _H,
        "SamplerSettings.sampler_type": _H,
        "SamplerSettings.sampler_parameters": _H,
        "UniformParameters.seed": _H,
        "UniformParameters.min_value": _H,
        "UniformParameters.max_value": _H,
        "GaussianParameters.seed": _H,
        "GaussianParameters.mean": _H,
        "GaussianParameters.st_dev": _H,
        "MultiRangeUniformParameters.seed": _H,
        "MultiRangeUniformParameters.intervals": _H,
        "ConstantParameters.seed": _H,
        "ConstantParameters.value": _H,
        "CompletionCriteriaSettings.behavior": _H,
        "CompletionCriteriaSettings.measure": _H,
        "CompletionCriteriaSettings.threshold": _H,
        "CompletionCriteriaSettings.min_lesson_length": _H,
        "CompletionCriteriaSettings.signal_smoothing": _H,
        "CompletionCriteriaSettings.require_reset": _H,
    }
)
"""Every key of every settings model ("Model.key"), with what fledge does with it."""

REFUSED_MODELS: Mapping[str, str] = MappingProxyType({})
"""Models reached through a key value that a run refuses: none of their keys can take effect."""

UNITY_ONLY = "it applies to Unity players only (--env path/to/player or --env unity-editor)"
RESTART_KEYS = ("max_lifetime_restarts", "restarts_rate_limit_n", "restarts_rate_limit_period_s")
UNITY_ENV_KEYS = ("base_port",)
RAY_KEYS = ("ray_address", "ray_num_cpus", "ray_envs_per_worker")


def is_unity_environment(env_name: str | None) -> bool:
    """Whether a run's environment is a Unity player or the Editor (the registry's rule)."""
    from fledge.envs.registry import is_unity

    return env_name is not None and is_unity(env_name)


def environment_kind(env_name: str) -> str:
    """'the built-in environment 3DBall', 'the Gymnasium environment gym:CartPole-v1', ..."""
    if is_unity_environment(env_name):
        return "the Unity Editor" if env_name == EDITOR_NAME else f"the Unity player {env_name}"
    if env_name.startswith("gym:"):
        return f"the Gymnasium environment {env_name}"
    if env_name.startswith("pettingzoo:"):
        return f"the PettingZoo environment {env_name}"
    return f"the built-in environment {env_name}"


def uses_ray_workers(env: EnvironmentSettings) -> bool:
    """Whether a run steps its environment copies in Ray actors (`workers: ray`, even with num_envs 1)."""
    return env.workers == "ray"


def uses_worker_processes(env: EnvironmentSettings) -> bool:
    """Whether a run steps its environment copies in worker processes (api.make_environment decides so)."""
    if env.num_envs <= 1:
        return False
    if env.workers is not None:
        return env.workers == "processes"
    if env.worker_processes is not None:
        return bool(env.worker_processes)
    return env.environment_name.startswith("pettingzoo:")  # built-in and Gymnasium copies are cheap


def uses_copy_pool(env: EnvironmentSettings) -> bool:
    """Whether a run steps `num_envs` copies through a pool that restarts failed copies (rollout.workers.EnvPool).

    In-process Gymnasium copies are one Gymnasium vector environment instead, without restarts. Ray actors
    are always a pool, even of one copy.
    """
    if uses_ray_workers(env):
        return True
    if env.num_envs <= 1:
        return False
    return uses_worker_processes(env) or not env.environment_name.startswith("gym:")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(getattr(value, "value", value))


def _default(model: type[Any], key: str) -> Any:
    return model.model_fields[key].default


def _environment_warnings(
    options: RunOptions, *, kind: str, builtin: bool, workers: bool, pool: bool, unity: bool
) -> list[str]:
    out: list[str] = []
    env = options.env_settings
    # a Unity player honours num_areas, base_port, timeout_wait and the engine settings
    if env.num_areas != _default(EnvironmentSettings, "num_areas") and not builtin and not unity:
        out.append(
            f"env_settings.num_areas: {_show(env.num_areas)} has no effect on {kind}; only built-in environments "
            "have training areas (use num_envs / --num-envs for more copies)."
        )
    for key in UNITY_ENV_KEYS:
        value = getattr(env, key)
        if value != _default(EnvironmentSettings, key) and not unity:
            out.append(f"env_settings.{key}: {_show(value)} has no effect on {kind}; {UNITY_ONLY}.")
    if not workers and not unity and env.timeout_wait != _default(EnvironmentSettings, "timeout_wait"):
        out.append(
            f"env_settings.timeout_wait: {_show(env.timeout_wait)} has no effect here; it is how long fledge waits "
            "for an environment worker process or a Unity player, and this run uses none (they run with num_envs > 1 and "
            "worker_processes: true)."
        )
    if not pool:
        for key in RESTART_KEYS:
            value = getattr(env, key)
            if value != _default(EnvironmentSettings, key):
                out.append(
                    f"env_settings.{key}: {_show(value)} has no effect here; it limits how often fledge restarts "
                    "failed environment copies (num_envs > 1), and this run's environment is never restarted."
                )
    if env.worker_processes and env.num_envs <= 1:
        out.append(
            "env_settings.worker_processes: true has no effect with num_envs 1; one environment is stepped in "
            "this process (set num_envs > 1 to step copies in worker processes)."
        )
    if not uses_ray_workers(env):
        for key in RAY_KEYS:
            value = getattr(env, key)
            if value != _default(EnvironmentSettings, key):
                out.append(
                    f"env_settings.{key}: {_show(value)} has no effect here; it applies to Ray environment workers "
                    "only (env_settings.workers: ray, --workers ray)."
                )
    for key in EngineSettings.model_fields:
        value = getattr(options.engine_settings, key)
        if value != _default(EngineSettings, key) and not unity:
            out.append(f"engine_settings.{key}: {_show(value)} has no effect on {kind}; {UNITY_ONLY}.")
    return out + _train_model_warning(options)


def _train_model_warning(options: RunOptions) -> list[str]:
    if options.checkpoint_settings.train_model:
        return [
            "checkpoint_settings.train_model: true is deprecated and has no effect; training is the default "
            "(use inference to run a policy without training)."
        ]
    return []


def _behavior_warnings(name: str, settings: TrainerSettings) -> list[str]:
    out: list[str] = []
    where = f"Behavior '{name}': "
    if settings.threaded:
        out.append(
            f"{where}threaded: true has no effect here; fledge updates each trainer in the training loop, "
            "between environment steps."
        )
    hyper = settings.hyperparameters
    learned = [_show(k) for k, v in settings.reward_signals.items() if v is not None and _show(k) != "extrinsic"]
    if (
        isinstance(hyper, SACSettings)
        and hyper.reward_signal_steps_per_update != hyper.steps_per_update
        and not learned
    ):
        out.append(
            f"{where}hyperparameters.reward_signal_steps_per_update: {_show(hyper.reward_signal_steps_per_update)} "
            "has no effect here; it paces the updates of the curiosity, rnd and gail reward signals, and this "
            "behavior has none of them."
        )
    for key, signal in settings.reward_signals.items():
        if _show(key) == "extrinsic" and signal is not None and signal.network_settings != NetworkSettings():
            out.append(
                f"{where}reward_signals.extrinsic.network_settings has no effect; the extrinsic reward signal "
                "has no network."
            )
    return out


def effect_warnings(
    options: RunOptions,
    *,
    env_name: str | None,
    worker_processes: bool,
    behaviors: Sequence[str] | None = None,
) -> list[str]:
    """One line per setting that is accepted but has no effect in this run (empty when all take effect).

    `env_name`: the environment's name (`env_settings.environment_name`), or None for an environment
    object handed to the run; `worker_processes`: whether the run steps its environment in worker
    processes (`uses_worker_processes` for environments fledge builds); `behaviors`: the environment's
    behavior names, when known. Then the behavior keys are checked for each of them (with the settings
    each one gets), and behaviors of the configuration that the environment does not have are named.
    Otherwise the behaviors listed in the configuration are checked.
    """
    if env_name is None:
        kind, pool = "the environment given to the run", False
    else:
        kind, pool = environment_kind(env_name), worker_processes or uses_copy_pool(options.env_settings)
    unity = is_unity_environment(env_name)
    builtin = env_name is not None and ":" not in env_name and not unity
    out = _environment_warnings(options, kind=kind, builtin=builtin, workers=worker_processes, pool=pool, unity=unity)
    if behaviors is None:
        for name, settings in options.behaviors.items():
            out.extend(_behavior_warnings(name, settings))
        return out
    present = behavior_ids_by_brain(behaviors)  # brain names in order; teams `B?team=N` are one brain
    for name in present:
        out.extend(_behavior_warnings(name, options.behavior_settings(name)))
    out.extend(_self_play_warnings(options, behaviors, kind))
    missing = [name for name in options.behaviors if name not in present]
    if missing:
        listed = ", ".join(repr(n) for n in missing)
        has = ", ".join(repr(n) for n in sorted(present)) or "none"
        out.append(
            f"The configuration has settings for behavior(s) {listed} that {kind} does not have "
            f"(its behaviors: {has}); they are not used. Check the behavior names."
        )
    return out


def _self_play_warnings(options: RunOptions, behaviors: Sequence[str], kind: str) -> list[str]:
    """Self-play needs at least two teams among the behavior ids of its brains (`B?team=N`); with one, each
    self-play brain learns alone: no opponents, no team changes, no ELO."""
    ids = [parse_behavior_id(b) for b in behaviors]
    brains = [n for n in behavior_ids_by_brain(behaviors) if options.behavior_settings(n).self_play is not None]
    teams = {i.team_id for i in ids if i.brain_name in brains}
    if not brains or len(teams) > 1:
        return []
    names = ", ".join(i.behavior_id for i in ids if i.brain_name in brains)
    return [
        f"Behavior '{name}': self_play has no effect: {kind} gives the behaviors of self-play ({names}) a single "
        "team, so there is no opponent to play and no ELO; self-play needs teams (Behavior?team=N)."
        for name in brains
    ]
