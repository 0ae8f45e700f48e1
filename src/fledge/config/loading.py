"""Reading trainer YAML files into `RunOptions`, with one clear error for everything that is wrong."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from pydantic_core import ErrorDetails, ValidationError

from fledge.config._base import FLEDGE_ERROR, deep_merge
from fledge.config.schema import HYPERPARAMETER_CLASSES, RunOptions, ScheduleType, TrainerType
from fledge.errors import ConfigError

__all__ = ["build_run_options", "dump_run_options", "format_validation_error", "load_config_file"]

MAX_CONFIG_BYTES = 16 * 1024 * 1024
"""Larger files are refused: a trainer config is a few kilobytes."""

_ON_POLICY = (TrainerType.PPO.value, TrainerType.POCA.value)


# --- files ---------------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # unhashable key: reported by the base class
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found the key {key!r} twice (first at line {first + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _yaml_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return type(value).__name__


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a trainer YAML file with a safe loader; an empty file gives an empty mapping."""
    file = Path(path).expanduser()
    shown = file.absolute()
    if not file.exists():
        raise ConfigError(
            f"Config file could not be found at {shown}. Check the path and file name, "
            "or run 'fledge learn' without a config file to train with the default settings."
        )
    if file.is_dir():
        raise ConfigError(f"{shown} is a folder, not a config file. Give the path of a YAML file.")
    try:
        if file.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"Config file {shown} is larger than {MAX_CONFIG_BYTES // 2**20} MiB; is it a config?")
        data = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"Config file {shown} could not be read: {exc.strerror or exc}.") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"Config file {shown} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start} "
            "cannot be decoded). Save the file with UTF-8 encoding."
        ) from None
    try:
        loaded = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "syntax error"
        raise ConfigError(
            f"Config file {shown} is not valid YAML: {problem}{where}. "
            "Fix the file (a YAML linter such as yamllint shows the problem in context)."
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"Config file {shown} is not valid YAML: {exc}.") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"The top level of config file {shown} must be a mapping of sections "
            f"(behaviors:, default_settings:, env_settings:, ...), but it is {_yaml_kind(loaded)}."
        )
    return loaded


# --- building RunOptions -------------------------------------------------------------------------


def _inherit_schedules(trainer: dict[str, Any]) -> None:
    """ppo/poca: a given learning_rate_schedule is also the beta and epsilon schedule unless they are given."""
    hyper = trainer.get("hyperparameters")
    if trainer.get("trainer_type") not in _ON_POLICY or not isinstance(hyper, dict):
        return
    schedule = hyper.get("learning_rate_schedule")
    if schedule in ScheduleType._value2member_map_:  # a wrong value is reported once, where it was given
        hyper.setdefault("beta_schedule", schedule)
        hyper.setdefault("epsilon_schedule", schedule)


def _merge_base(default_settings: dict[str, Any]) -> dict[str, Any]:
    """What every behavior is merged over: the keys given in default_settings, plus the defaults that
    ML-Agents carries over from a parsed default_settings (trainer_type and the reward signals)."""
    base = copy.deepcopy(default_settings)
    base.pop("framework", None)
    base.setdefault("trainer_type", TrainerType.PPO.value)
    base.setdefault("reward_signals", {"extrinsic": {"gamma": 0.99, "strength": 1.0}})
    return base


def _merge_behavior(base: dict[str, Any], behavior: dict[str, Any]) -> dict[str, Any]:
    base_type = base.get("trainer_type")
    own_type = behavior.get("trainer_type", base_type)
    hyper = base.get("hyperparameters")
    if own_type != base_type and own_type in TrainerType._value2member_map_ and isinstance(hyper, dict):
        # Another trainer type: keep only the default hyperparameters that this trainer type has.
        fields = HYPERPARAMETER_CLASSES[TrainerType(own_type)].model_fields
        base = {**base, "hyperparameters": {key: value for key, value in hyper.items() if key in fields}}
    return deep_merge(base, behavior)


def _has_path(data: Any, path: tuple[Any, ...]) -> bool:
    for key in path:
        if isinstance(data, dict) and key in data:
            data = data[key]
        elif isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data):
            data = data[key]
        else:
            return False
    return True


def build_run_options(raw: Mapping[str, Any] | None, *, source: str = "<config>") -> RunOptions:
    """Validate a loaded YAML mapping into `RunOptions` (spec 2.1 parsing rules).

    Each behavior is deep-merged over `default_settings`; for ppo/poca a given
    `learning_rate_schedule` is also the beta/epsilon schedule unless those are given.
    Every problem is reported in one `ConfigError` naming `source` and the key path.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: the configuration must be a mapping of sections, but it is {_yaml_kind(raw)}.")
    data: dict[str, Any] = copy.deepcopy(dict(raw))
    default_settings = data.get("default_settings")
    base: dict[str, Any] | None = None
    if isinstance(default_settings, dict):
        _inherit_schedules(default_settings)
        base = _merge_base(default_settings)
    behaviors = data.get("behaviors")
    given: dict[Any, Any] = {}
    if isinstance(behaviors, dict):
        merged: dict[Any, Any] = {}
        for name, body in behaviors.items():
            body = {} if body is None else body
            given[name] = body
            if isinstance(body, dict):
                body = _merge_behavior(base, body) if base is not None else copy.deepcopy(body)
                _inherit_schedules(body)
            merged[name] = body
        data["behaviors"] = merged
    try:
        return RunOptions.model_validate(data)
    except ValidationError as exc:
        errors = _drop_inherited_duplicates(exc.errors(include_url=False), given)
        raise ConfigError(format_validation_error(errors, source=source)) from None


def _drop_inherited_duplicates(errors: list[ErrorDetails], given: dict[Any, Any]) -> list[ErrorDetails]:
    """A mistake in default_settings is reported there once, not again under every behavior."""
    in_defaults = {(e["type"], e["msg"], tuple(e["loc"][1:])) for e in errors if e["loc"][:1] == ("default_settings",)}
    kept = []
    for err in errors:
        loc = tuple(err["loc"])
        if len(loc) > 2 and loc[0] == "behaviors" and (err["type"], err["msg"], loc[2:]) in in_defaults:
            if not _has_path(given.get(loc[1]), loc[2:]):
                continue
        kept.append(err)
    return kept


def dump_run_options(options: RunOptions) -> str:
    """YAML of the fully resolved options: every key, defaults included, in declaration order."""
    return yaml.safe_dump(
        options.model_dump(mode="json"), sort_keys=False, default_flow_style=False, allow_unicode=True
    )


# --- error messages ------------------------------------------------------------------------------

_EXPECTED: Mapping[str, str] = MappingProxyType(
    {
        "int_type": "a whole number",
        "int_parsing": "a whole number",
        "int_from_float": "a whole number",
        "float_type": "a number",
        "float_parsing": "a number",
        "finite_number": "a finite number",
        "bool_type": "true or false",
        "bool_parsing": "true or false",
        "string_type": "a string",
        "dict_type": "a mapping (key: value pairs)",
        "model_type": "a mapping (key: value pairs)",
        "model_attributes_type": "a mapping (key: value pairs)",
        "list_type": "a list",
    }
)
_BOUNDS: Mapping[str, str] = MappingProxyType(
    {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
)
_BOUND_KEYS: Mapping[str, str] = MappingProxyType(
    {"greater_than_equal": "ge", "greater_than": "gt", "less_than_equal": "le", "less_than": "lt"}
)


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return repr(text)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _path(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = str(part)
            if not name or any(ch in name for ch in ".[] "):
                text += f"[{name!r}]"
            else:
                text += ("." if text else "") + name
    return text or "(top level)"


def _describe(err: ErrorDetails) -> str:
    kind, msg, value = err["type"], err["msg"], err.get("input")
    ctx: dict[str, Any] = dict(err.get("ctx") or {})
    key_note = "invalid key: " if err["loc"] and err["loc"][-1] == "[key]" else ""
    if kind == FLEDGE_ERROR:
        return msg
    if kind == "missing":
        return "required key is missing"
    if kind in ("enum", "literal_error"):
        return f"{key_note}invalid value {_show(value)}; allowed values: {ctx.get('expected', '?')}"
    if kind in _EXPECTED:
        return f"{key_note}expected {_EXPECTED[kind]}, got {_show(value)}"
    if kind in _BOUNDS:
        return f"must be {_BOUNDS[kind]} {ctx.get(_BOUND_KEYS[kind])}, got {_show(value)}"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s)"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} item(s)"
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


def format_validation_error(errors: list[ErrorDetails], *, source: str) -> str:
    """One message: the source, then one line per problem with its full key path."""
    lines = [f"  {_path(tuple(err['loc']))}: {_describe(err)}" for err in errors]
    count = "1 problem" if len(lines) == 1 else f"{len(lines)} problems"
    return f"Invalid configuration in {source} ({count}):\n" + "\n".join(lines)
