"""Progress bars for the ``progress(what, done, total)`` callbacks of the library."""

from __future__ import annotations


class Bars:
    """A ``progress(what, done, total)`` callback that shows one tqdm bar per ``what``: a new
    ``what`` closes the previous bar. ``leave``: keep finished bars on screen."""

    def __init__(self, unit: str = "it", leave: bool = False):
        self.unit, self.leave = unit, leave
        self._what: str | None = None
        self._bar = None

    def __call__(self, what: str, done: int, total: int) -> None:
        from tqdm import tqdm

        if what != self._what or self._bar is None:
            self.close()
            self._what = what
            self._bar = tqdm(total=total, desc=what, unit=self.unit, leave=self.leave)
        self._bar.total = total
        self._bar.n = done
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._bar, self._what = None, None

    def __enter__(self) -> Bars:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
