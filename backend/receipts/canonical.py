r"""RFC 8785 (JCS) canonical JSON: the one byte form a receipt is hashed and signed in.

A commitment is only checkable by a stranger if they can rebuild the exact bytes we hashed, in any
language. JCS gives that, provided the value stays inside I-JSON: finite numbers, integers within
the IEEE 754 double's exact range, string keys, well-formed Unicode. Anything outside is refused
here, with the path to the offending value, rather than hashed into a receipt no one can verify.

Speed: `rfc8785` is pure Python (~100 us for a receipt). For values without floats whose object
keys are all ASCII (every receipt envelope and typed payload), RFC 8785 output is exactly what the
C-accelerated `json.dumps(sort_keys=True, ensure_ascii=False, separators=(",", ":"))` writes:
integers print alike, strings escape the same characters the same way (`\"`, `\\`, `\b\f\n\r\t`,
other controls as lowercase `\u00xx`, everything else raw UTF-8), and ASCII keys sort the same by
UTF-16 unit as by code point. So those values take that path; the rest (floats, which need
ECMAScript number formatting, and non-ASCII keys, which sort by UTF-16 units) go to `rfc8785`.
A property test holds the two paths byte-equal.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import NoReturn

import rfc8785

__all__ = ["MAX_SAFE_INTEGER", "CanonicalizationError", "canonical_json", "loads_json"]

# ECMAScript's Number.MAX_SAFE_INTEGER: verifiers in JavaScript read every number as a double.
MAX_SAFE_INTEGER = 2**53 - 1


class CanonicalizationError(ValueError):
    """A value has no RFC 8785 form, so nothing derived from it could be verified elsewhere."""


def canonical_json(value: object) -> bytes:
    """The RFC 8785 bytes of `value` (dicts or other mappings, lists or tuples, scalars)."""
    if _fast(value, "$"):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError as error:  # a lone surrogate: not well-formed Unicode
            raise CanonicalizationError(
                f"{error}; only well-formed Unicode can be signed"
            ) from error
    return _slow_canonical_json(value)


def _slow_canonical_json(value: object) -> bytes:
    """The reference path (rfc8785), for any value `canonical_json` accepts."""
    try:
        return rfc8785.dumps(_to_json(value, "$"))  # type: ignore[arg-type]  # checked by _to_json
    except rfc8785.CanonicalizationError as error:  # e.g. a lone surrogate in a string
        raise CanonicalizationError(f"{error}; only well-formed Unicode can be signed") from error


def _fast(value: object, path: str) -> bool:
    """Whether `json.dumps` writes `value`'s RFC 8785 form (see the module docstring).

    Raises for what has no JSON form at all, exactly as `_to_json` would; returns False (use
    rfc8785) on a float, a non-ASCII key, or a container type json.dumps does not take as is.
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:  # type: ignore[operator]
            return True
        _to_json(value, path)  # raises with the path
    if kind is dict:
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str or not key.isascii():
                return False
            if not _fast(item, path):
                return False
        return True
    if kind is list or kind is tuple:
        return all(_fast(item, path) for item in value)  # type: ignore[attr-defined]
    return False  # floats, subclasses (enums...), other mappings: the reference path decides


def loads_json(data: bytes | str) -> object:
    """Parse JSON as a JCS producer in any language would read it back.

    Duplicate keys and NaN/Infinity are refused (two readers could disagree on them), and an
    integer literal beyond the safe range is read as a double, as ECMAScript does: JCS writes a
    large integral double such as 1e20 without an exponent, and `json.loads` would otherwise
    return an int that `canonical_json` (rightly) refuses.
    """

    def pairs(items: list[tuple[str, object]]) -> dict[str, object]:
        seen: set[str] = set()
        for key, _ in items:
            if key in seen:
                raise CanonicalizationError(f"duplicate object key {key!r}")
            seen.add(key)
        return dict(items)

    def integer(text: str) -> int | float:
        number = int(text)
        return number if abs(number) <= MAX_SAFE_INTEGER else float(text)

    def constant(name: str) -> NoReturn:
        raise CanonicalizationError(f"{name} is not JSON")

    try:
        return json.loads(data, object_pairs_hook=pairs, parse_int=integer, parse_constant=constant)
    except json.JSONDecodeError as error:
        raise CanonicalizationError(f"not JSON: {error}") from error


def _to_json(value: object, path: str) -> object:
    """Plain dicts/lists for `rfc8785`, which accepts only those, checked with a useful path."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise CanonicalizationError(
                f"{path}: integer {value} is beyond ±(2**53 - 1), which JSON readers cannot hold "
                "exactly; encode it as a decimal string"
            )
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CanonicalizationError(f"{path}: {value} has no JSON form; use a finite number")
        return value
    if isinstance(value, Mapping):
        result: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalizationError(f"{path}: object key {key!r} is not a string")
            result[key] = _to_json(item, f"{path}[{key!r}]")
        return result
    if isinstance(value, list | tuple):
        return [_to_json(item, f"{path}[{index}]") for index, item in enumerate(value)]
    raise CanonicalizationError(
        f"{path}: {type(value).__name__} has no JSON form; convert it (e.g. Decimal or bytes to a "
        "string) before canonicalizing"
    )
