"""The one error type for bad input files: it names the file and, where known, the line."""
from __future__ import annotations


class InputFormatError(ValueError):
    """Bad input: ``InputFormatError(path, "non-integer id 'x'", line=12)``.

    >>> str(InputFormatError("g.txt", "non-integer id 'x'", line=12))
    "g.txt:12: non-integer id 'x'"
    """

    def __init__(self, path: str, message: str, line: int | None = None):
        self.path, self.line, self.message = str(path), line, message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")
