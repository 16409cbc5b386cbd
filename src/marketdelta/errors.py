"""Error types the library raises; the CLI turns them into messages and exit status 1.

This module is imported on the start-up path, so it must stay free of heavy imports.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_PROBLEMS_SHOWN = 20


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file, located as precisely as the input allows."""

    file: str
    message: str
    line: int | None = None
    column: str | None = None
    value: str | None = None

    def __str__(self) -> str:
        parts = [self.file if self.line is None else f"{self.file}:{self.line}"]
        if self.column is not None:
            parts.append(f"column '{self.column}'")
        if self.value is not None:
            parts.append(f"value '{_shorten(self.value)}'")
        return ": ".join(parts) + " — " + self.message


def _shorten(value: str, limit: int = 60) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


class MarketdeltaError(Exception):
    """Base class: anything the user can fix. Never a bug."""


class InputError(MarketdeltaError):
    """One or more input files were rejected. Nothing was written anywhere."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__(self._text())

    def _text(self) -> str:
        shown = [str(p) for p in self.problems[:MAX_PROBLEMS_SHOWN]]
        hidden = len(self.problems) - len(shown)
        if hidden > 0:
            shown.append(f"… and {hidden} more problems")
        return "\n".join(shown)


class DataError(MarketdeltaError):
    """The data read fine but cannot answer the question (no such survey, empty period, …)."""


class WorkspaceError(MarketdeltaError):
    """The workspace database cannot be used (locked, newer schema, read-only, …)."""
