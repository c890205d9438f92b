"""Progress reporting that suits where it is written.

On a terminal, tqdm's bar (redrawn in place with carriage returns). Anywhere else (a log file,
a pipe, CI) a redrawn bar piles up as hundreds of partial lines, so `progress_bar` prints a
plain line instead: at the start, every LINE_SECONDS, at every further tenth of the work, and
at the end. Every long loop in embedscape reports through `progress_bar`.

    with progress_bar(total=len(files), desc="indexing c", unit="img") as bar:
        for f in files:
            ...
            bar.update(1)
    for row in progress_bar(rows, desc="metrics", unit="img"):   # or wrapping an iterable
        ...
"""
from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from tqdm import tqdm

LINE_SECONDS = 5.0  # off a terminal: at most this long between two lines while work goes on
LINE_STEPS = 10     # ... and a line at every tenth of the total
LINE_FORMAT = "{desc}: {n_fmt}/{total_fmt} {unit} ({percentage:.0f}%) [{elapsed}<{remaining}, {rate_fmt}]"


def progress_bar(iterable: Iterable[Any] | None = None, total: int | None = None, desc: str = "",
                 unit: str = "it", disable: bool = False, file: TextIO | None = None,
                 line_seconds: float = LINE_SECONDS, **tqdm_options: Any) -> Any:
    """tqdm's bar when `file` (default stderr) is a terminal, else a `LineProgress`."""
    stream = file if file is not None else sys.stderr
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    if disable or is_terminal(stream):
        return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, file=stream, **tqdm_options)
    return LineProgress(iterable, total, desc, unit, stream, line_seconds)


def is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class LineProgress:
    """The part of tqdm's interface embedscape uses (update, close, iteration, `with`),
    printing one whole line at a time."""

    def __init__(self, iterable: Iterable[Any] | None, total: int | None, desc: str, unit: str, stream: TextIO,
                 line_seconds: float = LINE_SECONDS) -> None:
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.stream, self.line_seconds = stream, line_seconds
        self.n = 0
        self.started = self.last_line = time.monotonic()
        self._next_step = 1
        self._closed = False
        self._print()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if self.total:
            step = self.n * LINE_STEPS // self.total
            if step >= self._next_step and self.n < self.total:
                self._next_step = step + 1
                self._print(now)
                return
        if now - self.last_line >= self.line_seconds and (not self.total or self.n < self.total):
            self._print(now)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._print()

    def __iter__(self) -> Iterator[Any]:
        if self.iterable is None:
            raise TypeError("LineProgress made without an iterable cannot be iterated")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _print(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.last_line = now
        line = tqdm.format_meter(self.n, self.total, now - self.started, prefix=self.desc, unit=self.unit,
                                 bar_format=LINE_FORMAT if self.total else None)
        print(line, file=self.stream, flush=True)
