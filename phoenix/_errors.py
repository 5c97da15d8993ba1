"""Wiring errors: every problem names the file, the line, the column and the path."""

from __future__ import annotations

import msgspec

__all__ = ["WiringError", "WiringProblem"]


class WiringProblem(msgspec.Struct, frozen=True):
    """One thing wrong with a wiring file."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.path}: {self.message}"


class WiringError(ValueError):
    """A wiring file that cannot be used; ``problems`` lists all that was found.

    Raised by :func:`phoenix.load` (and so by :func:`phoenix.boot` and
    :func:`phoenix.reload`, which then change nothing). ``str()`` is one line
    per problem, in file order. No value that came from the environment is
    ever part of a message.
    """

    def __init__(self, problems: list[WiringProblem]) -> None:
        ordered = sorted(problems, key=lambda p: (p.file, p.line, p.column, p.path))
        super().__init__("\n".join(str(p) for p in ordered))
        self.problems = ordered
