"""Building blocks shared by the config schema: the strict base model, lenient number types, error helpers.

Nothing here is public API; `fledge.config` re-exports what users need.
"""

from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ModelWrapValidatorHandler, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

__all__ = [
    "FLEDGE_ERROR",
    "ConfigEnum",
    "Float",
    "Int",
    "StrictModel",
    "TruncatedInt",
    "closest",
    "deep_merge",
    "error_detail",
    "fail",
    "line_errors",
    "to_float",
    "unknown_key_error",
]

# Error type of every message written by fledge itself; the formatter shows its message unchanged.
FLEDGE_ERROR = "fledge"


class ConfigEnum(str, Enum):
    """A string enum whose members print as their YAML value."""

    def __str__(self) -> str:
        return str(self.value)


def _custom(message: str) -> PydanticCustomError:
    # Without a context pydantic-core uses the template unchanged, braces included.
    return PydanticCustomError(FLEDGE_ERROR, message)


def error_detail(loc: tuple[str | int, ...], message: str, value: Any) -> InitErrorDetails:
    """One line error with fledge's own message."""
    return {"type": _custom(message), "loc": loc, "input": value}


def fail(owner: str, loc: tuple[str | int, ...], message: str, value: Any) -> ValidationError:
    """A validation error at `loc` (relative to the model being validated) with a plain message."""
    return ValidationError.from_exception_data(owner, [error_detail(loc, message, value)])


def line_errors(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[InitErrorDetails]:
    """The errors of `exc` as line errors that can be raised again, each location under `prefix`."""
    out: list[InitErrorDetails] = []
    for err in exc.errors(include_url=False):
        # The message is already formatted; the context is kept because the formatter reads it.
        error = PydanticCustomError(err["type"], err["msg"], err.get("ctx"))
        out.append({"type": error, "loc": prefix + tuple(err["loc"]), "input": err.get("input")})
    return out


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to `word` (case-insensitive), or None when nothing is close."""
    options = list(choices)
    lowered = {choice.lower(): choice for choice in options}
    if word.lower() in lowered:
        return lowered[word.lower()]
    found = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    if found:
        return lowered[found[0]]
    # A shortened or extended key ("min" for "min_value"), when only one key fits.
    prefixed = [choice for low, choice in lowered.items() if len(word) >= 3 and low.startswith(word.lower())]
    prefixed = prefixed or [choice for low, choice in lowered.items() if len(low) >= 3 and word.lower().startswith(low)]
    return prefixed[0] if len(prefixed) == 1 else None


def unknown_key_error(
    key: Any, value: Any, allowed: Iterable[str], *, owner: str, loc: tuple[str | int, ...] = ()
) -> InitErrorDetails:
    """Line error for a key that `owner` does not have, suggesting the closest valid key."""
    allowed = list(allowed)
    message = f"unknown key {str(key)!r} for {owner}"
    match = closest(str(key), allowed) if isinstance(key, str) else None
    if match is not None:
        message += f"; did you mean {match!r}?"
    else:
        message += "; valid keys are: " + ", ".join(allowed)
    return error_detail(loc + (key,), message, value)


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, and all errors are reported together.

    Subclasses that must rewrite their raw input (remove an obsolete key, fill a derived default)
    override `_prepare`, which runs before unknown keys are looked for.
    """

    model_config = ConfigDict(
        extra="forbid",
        coerce_numbers_to_str=True,
    )
    yaml_name: ClassVar[str | None] = None

    @classmethod
    def _prepare(cls, data: dict[Any, Any]) -> dict[Any, Any]:
        return data

    @model_validator(mode="wrap")
    @classmethod
    def _reject_unknown_keys(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        if not isinstance(data, dict):
            return handler(data)
        data = cls._prepare(dict(data))
        allowed = list(cls.model_fields)
        unknown = [key for key in data if key not in cls.model_fields]
        if not unknown:
            return handler(data)
        name = cls.yaml_name or cls.__name__
        errors = [unknown_key_error(key, data[key], allowed, owner=name) for key in unknown]
        try:
            handler({key: value for key, value in data.items() if key in cls.model_fields})
        except ValidationError as exc:
            errors.extend(line_errors(exc))
        raise ValidationError.from_exception_data(cls.__name__, errors)


# --- numbers -------------------------------------------------------------------------------------
# PyYAML reads `5.0e5` and `1e-4` as strings (YAML 1.1 wants a dot and a signed exponent), so numeric
# strings are accepted wherever a number is expected. Booleans are never numbers.


def _number_error(kind: str) -> PydanticCustomError:
    phrase = "a whole number" if kind == "int" else "a number"
    return PydanticCustomError(f"{kind}_type", f"expected {phrase}")


def to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise _number_error("float")
    if isinstance(value, (int, float)):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise _number_error("float") from None
    else:
        raise _number_error("float")
    if not math.isfinite(result):
        raise PydanticCustomError("finite_number", "expected a finite number")
    return result


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise _number_error("int")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    try:
        number = to_float(value)
    except PydanticCustomError:
        raise _number_error("int") from None
    if not number.is_integer():
        raise PydanticCustomError("int_from_float", "expected a whole number")
    return int(number)


def _to_truncated_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(to_float(value))
    except PydanticCustomError:
        raise _number_error("int") from None


Float = Annotated[float, BeforeValidator(to_float)]
"""A finite float; numeric strings such as ``"3e-4"`` are accepted."""

Int = Annotated[int, BeforeValidator(_to_int)]
"""An int; integral floats and numeric strings (``1.2e4``) are accepted, fractions are errors."""

TruncatedInt = Annotated[int, BeforeValidator(_to_truncated_int)]
"""An int read as a float and truncated (ML-Agents' rule for ``max_steps``)."""


def deep_merge(base: Mapping[Any, Any], override: Mapping[Any, Any]) -> dict[Any, Any]:
    """`override` merged over `base`: nested mappings merge key by key, anything else replaces."""
    result: dict[Any, Any] = copy.deepcopy(dict(base))
    for key, value in override.items():
        old = result.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            result[key] = deep_merge(old, value)
        else:
            result[key] = copy.deepcopy(value)
    return result
