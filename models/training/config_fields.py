"""Building blocks of the training config schema: strict pydantic sections, field checks, and
one error message per problem naming the dotted key (what `fusionserve train` prints)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError


class ConfigError(ValueError):
    """The config is invalid; the message names the offending key."""


class Section(BaseModel):
    """A config mapping: strict types (YAML gives real ints and bools), no unknown keys.

    Validators raise ValueError with a message about the field (the key is prefixed), or
    ConfigError with a message that already names its keys (shown as is)."""

    model_config = ConfigDict(strict=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, raw: object) -> object:
        if not isinstance(raw, dict):
            raise PydanticCustomError("section", "expected a mapping", {"kind": type(raw).__name__})
        unknown = sorted(str(key) for key in set(raw) - set(cls.model_fields))
        if unknown:
            raise PydanticCustomError(
                "unknown_key", "unknown key", {"key": unknown[0], "valid": sorted(cls.model_fields)}
            )
        return raw


def _number(value: object) -> object:
    """Ints and numeric strings as floats (YAML reads "3e-4" as a string); never a bool."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("number", "expected a number")
    return float(value)


Number = Annotated[float, BeforeValidator(_number)]


def check(test: Callable[[Any], bool], message: str) -> AfterValidator:
    """A field check; `message` may use {value} (the value as written in the config)."""

    def validate(value: Any) -> Any:
        if not test(value):
            raise ValueError(message.format(value=value))
        return value

    return AfterValidator(validate)


def one_of(choices: Iterable[str]) -> AfterValidator:
    allowed = list(choices)

    def validate(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"{value!r} is not one of {allowed}")
        return value

    return AfterValidator(validate)


POSITIVE = check(lambda v: v > 0, "must be > 0, got {value!r}")
NON_NEGATIVE = check(lambda v: v >= 0, "must be >= 0, got {value}")
FRACTION = check(lambda v: 0.0 <= v < 1.0, "must be in [0, 1), got {value}")

_EXPECTED = {
    "int_type": "an integer",
    "bool_type": "true/false",
    "string_type": "a string",
    "dict_type": "a mapping",
    "float_type": "a number",
    "number": "a number",
}


def describe(error: ErrorDetails) -> str:
    """One pydantic error as the message of a ConfigError."""
    loc = [str(part) for part in error["loc"]]
    key = ".".join(loc)
    ctx = error.get("ctx") or {}
    kind = error["type"]
    if kind == "unknown_key":
        full = ".".join([*loc, ctx["key"]])
        return f"unknown key {full!r}; valid keys: {ctx['valid']}"
    if kind == "section":
        return f"{key or 'config'}: expected a mapping, got {ctx['kind']}"
    if kind == "missing":
        return f"missing required key {key!r}"
    if kind == "value_error":
        cause = ctx["error"]
        return str(cause) if isinstance(cause, ConfigError) or not key else f"{key!r}: {cause}"
    if kind in _EXPECTED:
        return f"{key!r}: expected {_EXPECTED[kind]}, got {error['input']!r}"
    return f"{key!r}: {error['msg']}"
