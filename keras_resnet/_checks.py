"""Small validators shared by every module that checks user input.

Every message has the same shape, so users and tests can rely on it::

    blocks[2].strides must be >= 1. Received: strides=0

The first word is the *path* of the offending field inside the spec (or the
argument name), then what is allowed, then the value received.
"""

from __future__ import annotations

import difflib
import functools
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn


def _field(path: str) -> str:
    """Last component of a path: ``blocks[2].strides`` -> ``strides``."""
    return path.rsplit(".", 1)[-1].split("[", 1)[0] or path


def received(path: str, value: Any) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"Received: {_field(path)}={text}"


def type_name(value: Any) -> str:
    return type(value).__name__


class InputError(Exception):
    """Marks an error in what the user gave (an argument, a spec, a file), found
    before the work it was for: the command line exits with 2 for it."""


class InvalidInput(InputError, ValueError):
    """A value the user gave is not allowed (a ``ValueError``)."""


class InvalidInputType(InputError, TypeError):
    """A value the user gave has the wrong type (a ``TypeError``)."""


def fail(path: str, requirement: str, value: Any, exc: type = ValueError) -> NoReturn:
    """Raise the standard message as :class:`InvalidInput` (``exc=TypeError``:
    :class:`InvalidInputType`)."""
    kind = InvalidInputType if issubclass(exc, TypeError) else InvalidInput
    raise kind(f"{path} {requirement}. {received(path, value)}")


def check_int(
    path: str, value: Any, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        fail(
            path,
            f"must be an integer (got {type_name(value)})",
            value,
            TypeError,
        )
    value = int(value)
    if minimum is not None and value < minimum:
        fail(path, f"must be >= {minimum}", value)
    if maximum is not None and value > maximum:
        fail(path, f"must be <= {maximum}", value)
    return value


def check_float(
    path: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_maximum: bool = False,
) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        fail(path, f"must be a number (got {type_name(value)})", value, TypeError)
    value = float(value)
    if not math.isfinite(value):
        fail(path, "must be a finite number", value)
    if minimum is not None and value < minimum:
        fail(path, f"must be >= {minimum}", value)
    if maximum is not None:
        if exclusive_maximum and value >= maximum:
            fail(path, f"must be < {maximum}", value)
        if not exclusive_maximum and value > maximum:
            fail(path, f"must be <= {maximum}", value)
    return value


def check_bool(path: str, value: Any) -> bool:
    if not isinstance(value, bool):
        fail(path, f"must be True or False (got {type_name(value)})", value, TypeError)
    return value


def check_str(path: str, value: Any) -> str:
    if not isinstance(value, str):
        fail(path, f"must be a string (got {type_name(value)})", value, TypeError)
    return value


def check_choice(path: str, value: Any, choices: Iterable[Any]) -> Any:
    """Check ``value`` is one of ``choices`` (None allowed only if listed)."""
    choices = list(choices)
    if value is None and None in choices:
        return None
    if value is not None and not isinstance(value, (str, bool, numbers.Number)):
        fail(
            path,
            f"must be one of {_list(choices)} (got {type_name(value)})",
            value,
            TypeError,
        )
    if value in choices and not (isinstance(value, bool) and True not in choices):
        return value
    hint = close_matches(value, [c for c in choices if isinstance(c, str)])
    fail(path, f"must be one of {_list(choices)}{hint}", value)


def _list(choices: list) -> str:
    return ", ".join(repr(c) for c in choices)


def close_matches(value: Any, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when ``value`` is close to a candidate, else ``''``."""
    if not isinstance(value, str):
        return ""
    candidates = list(candidates)
    lowered = {c.lower(): c for c in candidates}
    matches = difflib.get_close_matches(value.lower(), list(lowered), n=3, cutoff=0.6)
    if not matches:
        return ""
    return " (did you mean " + " or ".join(repr(lowered[m]) for m in matches) + "?)"


def check_keys(path: str, data: Mapping, allowed: Iterable[str]) -> None:
    """Unknown keys are an error (a typo must not be silently ignored)."""
    allowed = list(allowed)
    for key in data:
        if not isinstance(key, str):
            fail(path or "spec", "keys must be strings", key, TypeError)
        if key not in allowed:
            where = f"{path}." if path else ""
            raise ValueError(
                f"{where}{key} is not a known field{close_matches(key, allowed)}. "
                f"Known fields: {', '.join(allowed)}. Received: {key}={data[key]!r}"
            )


def no_attribute(module: str, name: str, removed: Mapping[str, tuple[str, str]]) -> NoReturn:
    """A module's ``__getattr__`` ending: the ``AttributeError`` for ``name``, naming the
    replacement where ``removed`` holds it (``{name: (when, what to use instead)}``)."""
    if name in removed:
        when, instead = removed[name]
        raise AttributeError(f"{module}.{name} was {when}; use {instead}")
    raise AttributeError(f"module {module!r} has no attribute {name!r}")


def renamed(**names: str) -> Callable:
    """Refuses keyword names deprecated in 0.3 (removed in 0.4), naming the replacement.

    ``@renamed(path="filepath")``: a call with ``path=`` raises
    :class:`InvalidInputType` ``"plot(path=...) was deprecated in 0.3 and is removed;
    use filepath="``. The replacement is a keyword name (``"filepath"`` or
    ``"filepath="``: the message says ``use filepath=``) or free text, said as it is
    (``@renamed(residual="spec.replace(residual=...)")``: ``use
    spec.replace(residual=...)``).
    """
    hints = {old: f"{new}=" if new.isidentifier() else new for old, new in names.items()}

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            for old, hint in hints.items():
                if old in kwargs:
                    raise InvalidInputType(f"{fn.__name__}({old}=...) was deprecated in 0.3 "
                                           f"and is removed; use {hint}")
            return fn(*args, **kwargs)

        return inner

    return wrap
