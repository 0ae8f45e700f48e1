"""The trainer configuration schema: ML-Agents 1.1.0 keys and defaults (spec 2.2 to 2.9).

Every model rejects unknown keys (with a suggestion), integer keys accept integral floats and
numeric strings (PyYAML reads ``1.2e4`` as a string), and ``max_steps`` is truncated like ML-Agents.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pydantic import Field, PrivateAttr, SerializeAsAny, ValidationInfo, field_validator, model_validator
from pydantic_core import InitErrorDetails, ValidationError

from fledge.config._base import (
    ConfigEnum,
    Float,
    Int,
    StrictModel,
    TruncatedInt,
    error_detail,
    fail,
    line_errors,
    unknown_key_error,
)
from fledge.config.environment_parameters import EnvironmentParameterSettings, normalize_environment_parameters
from fledge.config.sections import (
    DEFAULT_ENV,
    CheckpointSettings,
    EngineSettings,
    EnvironmentSettings,
    TorchSettings,
)
from fledge.envs.behavior_id import brain_name
from fledge.errors import ConfigError

__all__ = [
    "DEFAULT_ENV",
    "BehavioralCloningSettings",
    "CheckpointSettings",
    "ConditioningType",
    "CuriositySettings",
    "EncoderType",
    "EngineSettings",
    "EnvironmentSettings",
    "ExtrinsicSettings",
    "GAILSettings",
    "HyperparamSettings",
    "MemorySettings",
    "NetworkSettings",
    "POCASettings",
    "PPOSettings",
    "RNDSettings",
    "RewardSignalSettings",
    "RewardSignalType",
    "RunOptions",
    "SACSettings",
    "ScheduleType",
    "Schedules",
    "SelfPlaySettings",
    "TorchSettings",
    "TrainerSettings",
    "TrainerType",
]

logger = logging.getLogger(__name__)


class TrainerType(ConfigEnum):
    PPO = "ppo"
    SAC = "sac"
    POCA = "poca"


class ScheduleType(ConfigEnum):
    CONSTANT = "constant"
    LINEAR = "linear"


class EncoderType(ConfigEnum):
    SIMPLE = "simple"
    NATURE_CNN = "nature_cnn"
    RESNET = "resnet"
    MATCH3 = "match3"
    FULLY_CONNECTED = "fully_connected"


class ConditioningType(ConfigEnum):
    HYPER = "hyper"
    NONE = "none"


class RewardSignalType(ConfigEnum):
    EXTRINSIC = "extrinsic"
    GAIL = "gail"
    CURIOSITY = "curiosity"
    RND = "rnd"


# --- hyperparameters (2.4) -----------------------------------------------------------------------


class HyperparamSettings(StrictModel):
    batch_size: Int = Field(default=1024, ge=1)
    buffer_size: Int = Field(default=10240, ge=1)
    learning_rate: Float = Field(default=3.0e-4, ge=0.0)
    learning_rate_schedule: ScheduleType = ScheduleType.CONSTANT


class _OnPolicySettings(HyperparamSettings):
    learning_rate_schedule: ScheduleType = ScheduleType.LINEAR
    beta: Float = Field(default=5.0e-3, ge=0.0)
    beta_schedule: ScheduleType = ScheduleType.LINEAR
    epsilon: Float = Field(default=0.2, ge=0.0)
    epsilon_schedule: ScheduleType = ScheduleType.LINEAR
    lambd: Float = Field(default=0.95, ge=0.0, le=1.0)
    num_epoch: Int = Field(default=3, ge=1)


class PPOSettings(_OnPolicySettings):
    shared_critic: bool = False


class POCASettings(_OnPolicySettings):
    pass


class SACSettings(HyperparamSettings):
    batch_size: Int = Field(default=128, ge=1)
    buffer_size: Int = Field(default=50000, ge=1)
    buffer_init_steps: Int = Field(default=0, ge=0)
    tau: Float = Field(default=0.005, ge=0.0, le=1.0)
    steps_per_update: Float = Field(default=1.0, gt=0.0)
    save_replay_buffer: bool = False
    init_entcoef: Float = Field(default=1.0, gt=0.0)
    reward_signal_steps_per_update: Float = Field(default=1.0, gt=0.0)
    """Equal to ``steps_per_update`` when not given."""

    @model_validator(mode="after")
    def _derived_default(self) -> SACSettings:
        if "reward_signal_steps_per_update" not in self.model_fields_set:
            self.reward_signal_steps_per_update = self.steps_per_update
        return self


HYPERPARAMETER_CLASSES: Mapping[TrainerType, type[HyperparamSettings]] = MappingProxyType(
    {
        TrainerType.PPO: PPOSettings,
        TrainerType.SAC: SACSettings,
        TrainerType.POCA: POCASettings,
    }
)


# --- networks (2.5) ------------------------------------------------------------------------------


class MemorySettings(StrictModel):
    sequence_length: Int = Field(default=64, ge=1)
    memory_size: Int = Field(default=128, gt=0)

    @field_validator("memory_size")
    @classmethod
    def _even(cls, value: int) -> int:
        if value % 2:
            raise ValueError(f"memory_size must be even (the LSTM state is split in two halves), got {value}")
        return value


class NetworkSettings(StrictModel):
    normalize: bool = False
    hidden_units: Int = Field(default=128, ge=1)
    num_layers: Int = Field(default=2, ge=1)
    vis_encode_type: EncoderType = EncoderType.SIMPLE
    memory: MemorySettings | None = None
    goal_conditioning_type: ConditioningType = ConditioningType.HYPER
    deterministic: bool = False


# --- reward signals (2.6) ------------------------------------------------------------------------


class RewardSignalSettings(StrictModel):
    gamma: Float = Field(default=0.99, ge=0.0, le=1.0)
    strength: Float = 1.0
    network_settings: NetworkSettings = Field(default_factory=NetworkSettings)


class ExtrinsicSettings(RewardSignalSettings):
    pass


class _LearnedSignalSettings(RewardSignalSettings):
    learning_rate: Float = Field(default=3.0e-4, ge=0.0)
    encoding_size: Int | None = Field(default=None, ge=1)
    """Deprecated. Resolved here, once, for YAML and code alike: it becomes
    ``network_settings.hidden_units`` when no ``network_settings`` was given, and is then cleared."""

    @model_validator(mode="after")
    def _resolve_encoding_size(self) -> _LearnedSignalSettings:
        if self.encoding_size is not None:
            logger.warning("'encoding_size' was deprecated for RewardSignals. Please use network_settings.")
            if "network_settings" not in self.model_fields_set:
                self.network_settings = NetworkSettings(hidden_units=self.encoding_size)
            self.encoding_size = None
        return self


class CuriositySettings(_LearnedSignalSettings):
    pass


class GAILSettings(_LearnedSignalSettings):
    use_actions: bool = False
    use_vail: bool = False
    demo_path: str


class RNDSettings(_LearnedSignalSettings):
    learning_rate: Float = Field(default=1.0e-4, ge=0.0)


REWARD_SIGNAL_CLASSES: Mapping[RewardSignalType, type[RewardSignalSettings]] = MappingProxyType(
    {
        RewardSignalType.EXTRINSIC: ExtrinsicSettings,
        RewardSignalType.GAIL: GAILSettings,
        RewardSignalType.CURIOSITY: CuriositySettings,
        RewardSignalType.RND: RNDSettings,
    }
)


def _default_reward_signals() -> dict[RewardSignalType, RewardSignalSettings]:
    return {RewardSignalType.EXTRINSIC: ExtrinsicSettings()}


# --- imitation and self-play (2.7, 2.8) ----------------------------------------------------------


class BehavioralCloningSettings(StrictModel):
    demo_path: str
    steps: Int = Field(default=0, ge=0)
    strength: Float = Field(default=1.0, ge=0.0)
    samples_per_update: Int = Field(default=0, ge=0)
    num_epoch: Int | None = Field(default=None, ge=1)
    batch_size: Int | None = Field(default=None, ge=1)


class SelfPlaySettings(StrictModel):
    save_steps: Int = Field(default=20000, ge=1)
    team_change: Int = Field(default=100000, ge=1)
    """5 x ``save_steps`` when not given."""
    swap_steps: Int = Field(default=2000, ge=1)
    window: Int = Field(default=10, ge=1)
    play_against_latest_model_ratio: Float = 0.5
    initial_elo: Float = 1200.0
    elo_k_factor: Float = Field(default=1.0, gt=0.0)
    """fledge's addition: the ELO K-factor (1 as ML-Agents 1.1.0, which has no such key; 16 or 32 are common)."""

    @model_validator(mode="after")
    def _derived(self) -> SelfPlaySettings:
        if "team_change" not in self.model_fields_set:
            self.team_change = 5 * self.save_steps
        if not 0.0 <= self.play_against_latest_model_ratio <= 1.0:
            logger.warning(
                "play_against_latest_model_ratio is %s; it is a probability and should be between 0 and 1.",
                self.play_against_latest_model_ratio,
            )
        return self


# --- one behavior (2.3) --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Schedules:
    """The decay schedules of a behavior; `beta`/`epsilon` are None for trainers without them."""

    learning_rate: ScheduleType
    beta: ScheduleType | None
    epsilon: ScheduleType | None


class TrainerSettings(StrictModel):
    trainer_type: TrainerType = TrainerType.PPO
    hyperparameters: SerializeAsAny[HyperparamSettings] = Field(default_factory=PPOSettings)
    network_settings: NetworkSettings = Field(default_factory=NetworkSettings)
    reward_signals: dict[RewardSignalType, SerializeAsAny[RewardSignalSettings]] = Field(
        default_factory=_default_reward_signals
    )
    init_path: str | None = None
    keep_checkpoints: Int = 5
    even_checkpoints: bool = False
    checkpoint_interval: Int = Field(default=500000, ge=1)
    max_steps: TruncatedInt = Field(default=500000, ge=0)
    time_horizon: Int = Field(default=64, ge=1)
    summary_freq: Int = Field(default=50000, ge=1)
    threaded: bool = False
    self_play: SelfPlaySettings | None = None
    behavioral_cloning: BehavioralCloningSettings | None = None

    @classmethod
    def _prepare(cls, data: dict[Any, Any]) -> dict[Any, Any]:
        if "framework" in data:
            logger.warning("The 'framework' option is obsolete (fledge always uses PyTorch); it is ignored.")
            del data["framework"]
        if isinstance(data.get("hyperparameters"), dict) and "trainer_type" not in data:
            message = (
                "Hyperparameters were specified but no trainer_type was given; "
                "add 'trainer_type: ppo' (or sac, poca) to this behavior or to default_settings"
            )
            raise fail(cls.__name__, ("trainer_type",), message, None)
        return data

    @field_validator("trainer_type", mode="before")
    @classmethod
    def _known_trainer(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in TrainerType._value2member_map_:
            allowed = ", ".join(repr(t.value) for t in TrainerType)
            raise ValueError(f"Invalid trainer type {value} was found; allowed values: {allowed}")
        return value

    @field_validator("hyperparameters", mode="wrap")
    @classmethod
    def _hyperparameters_by_trainer(cls, value: Any, handler: Any, info: ValidationInfo) -> Any:
        trainer_type = info.data.get("trainer_type")
        if trainer_type is None:
            return value  # the trainer_type error is reported on its own
        if isinstance(value, dict):
            return HYPERPARAMETER_CLASSES[trainer_type].model_validate(value)
        return handler(value)

    @field_validator("reward_signals", mode="wrap")
    @classmethod
    def _signals_by_name(cls, value: Any, handler: Any) -> Any:
        if not isinstance(value, dict):
            return handler(value)
        result: dict[RewardSignalType, RewardSignalSettings] = {}
        errors: list[InitErrorDetails] = []
        allowed = [t.value for t in RewardSignalType]
        for key, body in value.items():
            if key not in RewardSignalType._value2member_map_:
                errors.append(unknown_key_error(key, body, allowed, owner="reward_signals"))
                continue
            kind = RewardSignalType(key)
            expected = REWARD_SIGNAL_CLASSES[kind]
            if isinstance(body, RewardSignalSettings) and type(body) is not expected:
                message = f"the {kind} reward signal needs {expected.__name__}, got {type(body).__name__}"
                errors.append(error_detail((key,), message, body))
                continue
            try:
                result[kind] = expected.model_validate({} if body is None else body)
            except ValidationError as exc:
                errors.extend(line_errors(exc, (key,)))
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return result

    @model_validator(mode="after")
    def _cross_checks(self) -> TrainerSettings:
        expected = HYPERPARAMETER_CLASSES[self.trainer_type]
        if "hyperparameters" not in self.model_fields_set:
            self.hyperparameters = expected()
        elif type(self.hyperparameters) is not expected:
            message = (
                f"trainer_type {self.trainer_type} needs {expected.__name__} hyperparameters, "
                f"got {type(self.hyperparameters).__name__}"
            )
            raise fail(type(self).__name__, ("hyperparameters",), message, None)
        memory = self.network_settings.memory
        if memory is not None and memory.sequence_length > self.hyperparameters.batch_size:
            message = (
                "When using memory, sequence length must be less than or equal to batch size "
                f"(sequence_length {memory.sequence_length}, batch_size {self.hyperparameters.batch_size})"
            )
            loc = ("network_settings", "memory", "sequence_length")
            raise fail(type(self).__name__, loc, message, memory.sequence_length)
        if isinstance(self.hyperparameters, SACSettings):
            _check_replay_sizes(self.hyperparameters, type(self).__name__)
        if self.even_checkpoints:
            if self.keep_checkpoints <= 0:
                message = "even_checkpoints needs keep_checkpoints >= 1 (the interval is max_steps / keep_checkpoints)"
                raise fail(type(self).__name__, ("keep_checkpoints",), message, self.keep_checkpoints)
            self.checkpoint_interval = max(1, int(self.max_steps / self.keep_checkpoints))
        return self

    def schedules(self) -> Schedules:
        """The learning-rate, beta and epsilon schedules of this behavior."""
        hyper = self.hyperparameters
        if isinstance(hyper, _OnPolicySettings):
            return Schedules(
                learning_rate=hyper.learning_rate_schedule, beta=hyper.beta_schedule, epsilon=hyper.epsilon_schedule
            )
        return Schedules(learning_rate=hyper.learning_rate_schedule, beta=None, epsilon=None)


def _check_replay_sizes(hyper: SACSettings, owner: str) -> None:
    """SAC updates on minibatches of batch_size drawn from a buffer that never holds more than buffer_size
    experiences: a buffer smaller than one minibatch would never allow a single update."""
    if hyper.buffer_size < hyper.batch_size:
        message = (
            f"buffer_size ({hyper.buffer_size}) is smaller than batch_size ({hyper.batch_size}): the replay buffer "
            "would never hold one minibatch, so SAC would never update; raise buffer_size or lower batch_size"
        )
        raise fail(owner, ("hyperparameters", "buffer_size"), message, hyper.buffer_size)
    if hyper.buffer_init_steps > hyper.buffer_size:
        logger.warning(
            "hyperparameters.buffer_init_steps (%d) exceeds buffer_size (%d): updates start after %d steps, but "
            "the replay buffer keeps only its newest experiences, so the oldest of those steps are discarded unused.",
            hyper.buffer_init_steps,
            hyper.buffer_size,
            hyper.buffer_init_steps,
        )


# --- top level (2.2) -----------------------------------------------------------------------------


class _ReportedNames:
    """Names a warning was already given for: bookkeeping, not part of the options' value.

    Any two are equal, so options compare (and round-trip) by their settings alone.
    """

    def __init__(self) -> None:
        self.names: set[str] = set()

    def first(self, name: str) -> bool:
        """True the first time `name` is seen."""
        if name in self.names:
            return False
        self.names.add(name)
        return True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ReportedNames)

    __hash__ = None  # type: ignore[assignment]


class RunOptions(StrictModel):
    behaviors: dict[str, TrainerSettings] = Field(default_factory=dict)
    default_settings: TrainerSettings | None = None
    env_settings: EnvironmentSettings = Field(default_factory=EnvironmentSettings)
    engine_settings: EngineSettings = Field(default_factory=EngineSettings)
    environment_parameters: dict[str, EnvironmentParameterSettings] | None = None
    checkpoint_settings: CheckpointSettings = Field(default_factory=CheckpointSettings)
    torch_settings: TorchSettings = Field(default_factory=TorchSettings)
    debug: bool = False
    _defaulted: _ReportedNames = PrivateAttr(default_factory=_ReportedNames)

    @classmethod
    def _prepare(cls, data: dict[Any, Any]) -> dict[Any, Any]:
        behaviors = data.get("behaviors")
        if behaviors is None and "behaviors" in data:
            data["behaviors"] = {}
        elif isinstance(behaviors, dict):
            data["behaviors"] = {name: ({} if body is None else body) for name, body in behaviors.items()}
        return data

    @field_validator("environment_parameters", mode="wrap")
    @classmethod
    def _environment_parameters(cls, value: Any, handler: Any) -> Any:
        if isinstance(value, dict):
            return normalize_environment_parameters(value)
        return handler(value)

    def behavior_settings(self, name: str) -> TrainerSettings:
        """The settings of behavior `name`, by its brain name (a ``?team=N`` suffix is ignored).

        A behavior missing from `behaviors` gets a copy of `default_settings`; without
        `default_settings` it gets all defaults if the config named no behaviors at all, and is an
        error otherwise.
        """
        brain = brain_name(name)
        if brain in self.behaviors:
            return self.behaviors[brain]
        if self.default_settings is not None:
            return self.default_settings.model_copy(deep=True)
        if not self.behaviors:
            if self._defaulted.first(brain):
                logger.warning("Behavior %r is not in the configuration; using default settings.", brain)
            return TrainerSettings()
        listed = ", ".join(repr(b) for b in self.behaviors)
        raise ConfigError(
            f"The behavior name {brain} has not been specified in the trainer configuration "
            f"(it lists {listed}). Please add an entry in the configuration file for {brain}, "
            "or set default_settings."
        )
