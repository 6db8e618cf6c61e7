"""The errors this package raises for a user's mistake: caught by every command, printed as one
message that says what to change (exit code 2), never as a traceback."""

from __future__ import annotations


class CofiSweepError(Exception):
    """Base class of the errors this package raises for bad input."""


class ConfigError(CofiSweepError, ValueError):
    """A configuration is malformed. ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str], source: str = "config") -> None:
        self.problems = problems
        self.source = source
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s) in {source}:\n{lines}")
