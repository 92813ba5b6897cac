"""One error family for every layer of kvplan.

Every error a user can cause is a :class:`KvplanError`. It subclasses ``ValueError`` so
plain Python callers can catch it the usual way, and it carries structured data (where,
field, value, expected) so the CLI and the dashboard can print one clear line.
"""

from __future__ import annotations

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
        self.where = where
        self.field = field
        self.value = value
        self.expected = expected
        parts = []
        if where:
            parts.append(f"{where}:")
        if field:
            parts.append(f"field '{field}'")
            if value is not None:
                parts.append(f"= {value!r}")
            parts[-1] += ":"
        parts.append(message)
        if expected:
            parts.append(f"(expected {expected})")
        super().__init__(" ".join(parts))


class UnknownNameError(KvplanError):
    """A model, GPU or scenario name that is not in the catalog."""


class ConfigError(KvplanError):
    """A malformed config file or a field that fails validation."""
