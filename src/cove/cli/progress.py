"""A progress bar for long commands, drawn on standard error only when it is a terminal.

One line, redrawn in place (``\\r``) at most ten times a second: ``[#####.....]  52%  label``.
Nothing at all is written when standard error is not a terminal, so scripts and pipes see the
same output as before.  Lines a command prints meanwhile go through :meth:`Progress.echo`,
which clears the bar, prints, and redraws it.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

WIDTH = 30


class Progress:
    def __init__(self, total: int, label: str = "", stream: IO[str] | None = None, unit: str = "") -> None:
        self.total, self.label, self.unit = max(total, 1), label, unit
        self.stream = stream if stream is not None else sys.stderr
        self.on = bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = 0
        self._drawn = 0.0

    def _text(self) -> str:
        frac = min(self.done / self.total, 1.0)
        fill = int(frac * WIDTH)
        amount = (f"{self.done / 1e6:.1f}/{self.total / 1e6:.1f} MB" if self.unit == "bytes"
                  else f"{self.done}/{self.total}")
        return f"[{'#' * fill}{'.' * (WIDTH - fill)}] {frac * 100:3.0f}%  {amount}  {self.label}"

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.on and (now - self._drawn >= 0.1 or self.done >= self.total):
            self._drawn = now
            self.stream.write("\r\x1b[K" + self._text())
            self.stream.flush()

    def echo(self, line: str) -> None:
        """Print a line of the command's own output without tearing the bar."""
        import click

        if self.on:
            self.stream.write("\r\x1b[K")
        click.echo(line)
        if self.on:
            self.stream.write(self._text())
            self.stream.flush()

    def close(self) -> None:
        if self.on:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


class Reading:
    """A file whose reads advance a byte progress bar (an upload's body)."""

    def __init__(self, f: IO[bytes], progress: Progress) -> None:
        self.f, self.progress = f, progress

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.progress.advance(len(data))
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.f, name)
