"""A small request schema checker that answers bad input the way OpenAI does (400, never 500)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from emulator.errors import ApiError, invalid


def _kind(value: Any) -> str:
    """OpenAI's word for a JSON value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "decimal"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _wrong_type(path: str, expected: str, value: Any) -> ApiError:
    return invalid(
        f"Invalid type for '{path}': expected {expected}, but got {_kind(value)} instead.",
        param=path,
        code="invalid_type",
    )


class Spec:
    """A value's expected shape; `check` raises ApiError when the value does not fit."""

    expected = "a value"

    def check(self, value: Any, path: str) -> None:
        """Raise a 400 ApiError if `value` (found at `path`) is not acceptable."""


class AnyValue(Spec):
    """Anything at all (fields the emulator accepts but ignores)."""


class Str(Spec):
    """A string, optionally bounded in length."""

    expected = "a string"

    def __init__(self, max_length: int | None = None, non_empty: bool = False) -> None:
        self.max_length = max_length
        self.non_empty = non_empty

    def check(self, value: Any, path: str) -> None:
        """Check type and length."""
        if not isinstance(value, str):
            raise _wrong_type(path, self.expected, value)
        if self.non_empty and not value.strip():
            raise invalid(
                f"Invalid '{path}': empty string. Expected a string with minimum length 1.",
                param=path,
                code="empty_string",
            )
        if self.max_length is not None and len(value) > self.max_length:
            raise invalid(
                f"Invalid '{path}': string too long. Expected a string with maximum length "
                f"{self.max_length}, but got a string with length {len(value)} instead.",
                param=path,
                code="string_above_max_length",
            )


class Num(Spec):
    """A number (integers only when `integer`), optionally bounded."""

    def __init__(
        self, integer: bool = False, minimum: float | None = None, maximum: float | None = None
    ) -> None:
        self.integer = integer
        self.minimum = minimum
        self.maximum = maximum
        self.expected = "an integer" if integer else "a decimal"

    def check(self, value: Any, path: str) -> None:
        """Check type and bounds."""
        allowed = (int,) if self.integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, allowed):
            raise _wrong_type(path, self.expected, value)
        if self.minimum is not None and value < self.minimum:
            raise invalid(
                f"Invalid '{path}': value {value} is below the minimum of {self.minimum}.",
                param=path,
                code="integer_below_min_value" if self.integer else "decimal_below_min_value",
            )
        if self.maximum is not None and value > self.maximum:
            raise invalid(
                f"Invalid '{path}': value {value} is above the maximum of {self.maximum}.",
                param=path,
                code="integer_above_max_value" if self.integer else "decimal_above_max_value",
            )


class Bool(Spec):
    """true or false."""

    expected = "a boolean"

    def check(self, value: Any, path: str) -> None:
        """Check type."""
        if not isinstance(value, bool):
            raise _wrong_type(path, self.expected, value)


class Enum(Spec):
    """One of a fixed set of strings."""

    expected = "a string"

    def __init__(self, *values: str) -> None:
        self.values = values

    def check(self, value: Any, path: str) -> None:
        """Check membership."""
        if not isinstance(value, str):
            raise _wrong_type(path, self.expected, value)
        if value not in self.values:
            supported = ", ".join(f"'{v}'" for v in self.values)
            raise invalid(
                f"Invalid value: '{value}'. Supported values are: {supported}.",
                param=path,
                code="invalid_value",
            )


class Nullable(Spec):
    """null, or a value matching the inner spec."""

    def __init__(self, inner: Spec) -> None:
        self.inner = inner
        self.expected = inner.expected

    def check(self, value: Any, path: str) -> None:
        """Accept null, else delegate."""
        if value is not None:
            self.inner.check(value, path)


class ListOf(Spec):
    """An array whose items all match `item`."""

    expected = "an array"

    def __init__(self, item: Spec, max_items: int | None = None, min_items: int = 0) -> None:
        self.item = item
        self.max_items = max_items
        self.min_items = min_items

    def check(self, value: Any, path: str) -> None:
        """Check type, length and every item."""
        if not isinstance(value, list):
            raise _wrong_type(path, self.expected, value)
        if self.max_items is not None and len(value) > self.max_items:
            raise invalid(
                f"Invalid '{path}': array too long. Expected an array with maximum length "
                f"{self.max_items}, but got an array with length {len(value)} instead.",
                param=path,
                code="array_above_max_length",
            )
        if len(value) < self.min_items:
            raise invalid(
                f"Invalid '{path}': empty array. Expected an array with minimum length "
                f"{self.min_items}, but got an empty array instead.",
                param=path,
                code="empty_array",
            )
        for i, item in enumerate(value):
            self.item.check(item, f"{path}[{i}]")


class Obj(Spec):
    """An object with known fields; unknown fields are refused unless `extra`."""

    expected = "an object"

    def __init__(
        self,
        fields: Mapping[str, Spec],
        required: Iterable[str] = (),
        extra: bool = True,
    ) -> None:
        self.fields = dict(fields)
        self.required = tuple(required)
        self.extra = extra

    def check(self, value: Any, path: str) -> None:
        """Check type, required fields, unknown fields and each known field."""
        if not isinstance(value, dict):
            raise _wrong_type(path or "body", self.expected, value)
        prefix = f"{path}." if path else ""
        for name in self.required:
            if name not in value:
                raise invalid(
                    f"Missing required parameter: '{prefix}{name}'.",
                    param=f"{prefix}{name}",
                    code="missing_required_parameter",
                )
        for name, item in value.items():
            spec = self.fields.get(name)
            if spec is None:
                if self.extra:
                    continue
                raise invalid(
                    f"Unknown parameter: '{prefix}{name}'.",
                    param=f"{prefix}{name}",
                    code="unknown_parameter",
                )
            spec.check(item, f"{prefix}{name}")


class OneOf(Spec):
    """A value matching any of several specs; the error of the first is reported."""

    def __init__(self, *options: Spec, expected: str | None = None) -> None:
        self.options = options
        self.expected = expected or " or ".join(o.expected for o in options)

    def check(self, value: Any, path: str) -> None:
        """Try each option in turn."""
        first: ApiError | None = None
        for option in self.options:
            try:
                option.check(value, path)
                return
            except ApiError as exc:
                first = first or exc
        # A plain type mismatch reads better naming every accepted type.
        if first is not None and first.code == "invalid_type":
            raise _wrong_type(path, self.expected, value)
        if first is not None:
            raise first


class Metadata(Spec):
    """OpenAI metadata: at most 16 string values, keys up to 64 and values up to 512 characters."""

    expected = "an object"

    def check(self, value: Any, path: str) -> None:
        """Check shape and limits."""
        if value is None:
            return
        if not isinstance(value, dict):
            raise _wrong_type(path, self.expected, value)
        if len(value) > 16:
            raise invalid(
                f"Invalid '{path}': too many properties. Expected an object with at most 16 "
                f"properties, but got an object with {len(value)} properties instead.",
                param=path,
                code="object_above_max_properties",
            )
        for key, item in value.items():
            Str(max_length=64).check(key, f"{path}.{key}")
            Str(max_length=512).check(item, f"{path}.{key}")


class Attributes(Spec):
    """Vector store file attributes: at most 16 string, number or boolean values."""

    expected = "an object"

    def check(self, value: Any, path: str) -> None:
        """Check shape and limits."""
        if value is None:
            return
        if not isinstance(value, dict):
            raise _wrong_type(path, self.expected, value)
        if len(value) > 16:
            raise invalid(
                f"Invalid '{path}': too many properties (at most 16).",
                param=path,
                code="object_above_max_properties",
            )
        for key, item in value.items():
            Str(max_length=64).check(key, f"{path}.{key}")
            OneOf(Str(max_length=512), Num(), Bool()).check(item, f"{path}.{key}")


def check_body(spec: Obj, body: Any) -> dict[str, Any]:
    """Validate a request body against `spec` and return it."""
    if not isinstance(body, dict):
        raise invalid(
            "Invalid body: expected a JSON object.", param=None, code="invalid_request_body"
        )
    spec.check(body, "")
    return body


def query_int(args: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within bounds (400 otherwise)."""
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(
            f"Invalid '{name}': expected an integer, but got '{raw}' instead.",
            param=name,
            code="invalid_type",
        ) from None
    if not low <= value <= high:
        raise invalid(
            f"Invalid '{name}': expected an integer between {low} and {high}, got {value}.",
            param=name,
            code="invalid_value",
        )
    return value


def query_enum(args: Mapping[str, str], name: str, default: str, *values: str) -> str:
    """A query parameter from a fixed set (400 otherwise)."""
    raw = args.get(name) or default
    Enum(*values).check(raw, name)
    return raw


def query_bool(args: Mapping[str, str], name: str) -> bool:
    """A boolean query parameter ("true"/"false"; 400 otherwise)."""
    raw = (args.get(name) or "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise invalid(
            f"Invalid '{name}': expected a boolean, but got '{raw}' instead.",
            param=name,
            code="invalid_type",
        )
    return raw in ("true", "1")
