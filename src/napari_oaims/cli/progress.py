"""Progress bars for the ``progress(what, done, total)`` callbacks of the library.

On a terminal they are tqdm bars. Into a file or a pipe (a log, ``| tee``, CI) they are plain
lines, a few per task, with no cursor movements or carriage returns.
"""

from __future__ import annotations

import sys

#: Shares of a task at which a plain progress line is written (when not on a terminal).
MILESTONES = (0.25, 0.5, 0.75, 1.0)


def on_terminal(stream=None) -> bool:
    """Whether ``stream`` (default stderr, where the bars go) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


class Bars:
    """A ``progress(what, done, total)`` callback that shows one tqdm bar per ``what``: a new
    ``what`` closes the previous bar. ``leave``: keep finished bars on screen. Off a terminal
    it writes a line at each quarter of a task instead."""

    def __init__(self, unit: str = "it", leave: bool = False):
        self.unit, self.leave = unit, leave
        self._what: str | None = None
        self._bar = None
        self._plain = not on_terminal()
        self._next = 0  # the next milestone to report (plain lines)

    def __call__(self, what: str, done: int, total: int) -> None:
        if self._plain:
            self._line(what, done, total)
            return
        from tqdm import tqdm

        if what != self._what or self._bar is None:
            self.close()
            self._what = what
            self._bar = tqdm(total=total, desc=what, unit=self.unit, leave=self.leave)
        self._bar.total = total
        self._bar.n = done
        self._bar.refresh()

    def _line(self, what: str, done: int, total: int) -> None:
        if what != self._what:
            self._what, self._next = what, 0
        share = done / total if total else 1.0
        reached = self._next
        while reached < len(MILESTONES) and share >= MILESTONES[reached]:
            reached += 1
        if reached > self._next:
            self._next = reached
            print(f"{what}: {done}/{total} {self.unit}{'s' if total != 1 else ''}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._bar, self._what = None, None

    def __enter__(self) -> Bars:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
