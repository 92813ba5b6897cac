"""One error family for every layer of kvplan.

Every error a user can cause is a :class:`KvplanError`. It subclasses ``ValueError`` so
plain Python callers can catch it the usual way, and it carries structured data (where,
field, value, expected) so the CLI and the dashboard can print one clear line.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


class KvplanError(ValueError):
    """A problem with user input or configuration, described in one line."""

    def __init__(
        self,
        message: str,
        *,
        where: str | None = None,
        field: str | None = None,
        value: Any = None,
        expected: str | None = None,
    ) -> None:
        self.message = message
        self.where = where
        self.field = field
        self.value = value
        self.expected = expected
        parts = []
        if where:
            parts.append(f"{where}:")
        if field:
            # A command-line flag is shown as typed (--batch); a file field is quoted.
            parts.append(field if field.startswith("--") else f"field '{field}'")
            if value is not None:
                parts.append(f"= {value!r}")
            parts[-1] += ":"
        parts.append(message)
        if expected:
            parts.append(f"(expected {expected})")
        super().__init__(" ".join(parts))

    def renamed(self, field: str, value: Any, *, keep_expected: bool = True) -> KvplanError:
        """The same error naming the user's own field (e.g. the command-line flag they typed
        instead of the internal field name); ``expected`` is dropped when its units differ."""
        return type(self)(
            self.message,
            where=None,
            field=field,
            value=value,
            expected=self.expected if keep_expected else None,
        )


class UnknownNameError(KvplanError):
    """A model, GPU or scenario name that is not in the catalog."""


class ConfigError(KvplanError):
    """A malformed config file or a field that fails validation."""


def one_of(value: str, choices: Iterable[str], also: Iterable[str] = ()) -> str:
    """'did you mean X? one of a, b, c' for an unknown name (the 'expected' of an error):
    names that start with what was typed first, else the closest spellings. ``also`` are
    further accepted names (aliases) that may be suggested but are not listed."""
    names = sorted(choices)
    candidates = sorted({*names, *also})
    key = value.strip().lower()
    close = [c for c in candidates if key and c.startswith(key)][:3]
    close = close or difflib.get_close_matches(key, candidates, n=2, cutoff=0.6)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    return hint + "one of " + ", ".join(names)
