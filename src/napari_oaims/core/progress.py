"""Progress and cancel for long calls: one protocol for propagation, updates, batch, training, benchmarks.

A long call takes two optional arguments:

``progress``
    A :class:`Progress`: any callable ``progress(done, total, message)``, called after each step
    with the steps ``done`` of ``total`` and a short text naming the work (``message`` may be
    ``""``; a new message starts a new count). A plain function works; :class:`TqdmProgress`
    draws terminal bars (napari's ``progress`` bar is a tqdm bar: pass it as ``bar``);
    :class:`Collect` keeps the calls (a notebook widget or a test reads them).
``cancel``
    A :class:`Cancel` (a :class:`threading.Event` with :meth:`Cancel.check`), any object with
    ``is_set()``, or a function returning True to stop. The call checks it between steps
    (:func:`check_cancel`) and raises :class:`Cancelled`; what a cancelled call leaves behind is
    said in its docstring (an update puts the weights back, a propagation changes nothing).

Examples
--------
>>> from napari_oaims.core.progress import Cancel, Cancelled, check_cancel, emit
>>> seen = []
>>> cancel = Cancel()
>>> for i in range(3):
...     check_cancel(cancel)
...     emit(lambda d, t, m: seen.append((d, t, m)), i + 1, 3, "steps")
>>> seen[-1]
(3, 3, 'steps')
>>> cancel.set()
>>> try:
...     check_cancel(cancel)
... except Cancelled:
...     print("stopped")
stopped
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Progress(Protocol):
    """``progress(done, total, message)``: ``done`` of ``total`` steps of the work ``message`` names."""

    def __call__(self, done: int, total: int, message: str = "", /) -> None: ...


class Cancelled(Exception):
    """A long call stopped because its ``cancel`` was set (between two steps)."""


class Cancel(threading.Event):
    """A cancel token: ``set()`` it from any thread; the long call it was passed to stops at its
    next step with :class:`Cancelled`."""

    def check(self) -> None:
        """Raise :class:`Cancelled` if set."""
        check_cancel(self)


class _Settable(Protocol):
    def is_set(self) -> bool: ...


#: What a ``cancel`` argument may be: an Event-like object, a function returning True to stop, or None.
CancelLike = _Settable | Callable[[], bool] | None


def cancel_requested(cancel: CancelLike) -> bool:
    """Whether ``cancel`` (see :data:`CancelLike`) asks to stop."""
    if cancel is None:
        return False
    is_set = getattr(cancel, "is_set", None)
    if is_set is not None:
        return bool(is_set())
    if callable(cancel):
        return bool(cancel())
    raise TypeError(f"cancel must be a threading.Event, an object with is_set(), a function or None, got {cancel!r}")


def check_cancel(cancel: CancelLike) -> None:
    """Raise :class:`Cancelled` when ``cancel`` asks to stop."""
    if cancel_requested(cancel):
        raise Cancelled("cancelled")


def emit(progress: Progress | None, done: int, total: int, message: str = "") -> None:
    """Call ``progress(done, total, message)`` when there is one."""
    if progress is not None:
        progress(int(done), int(total), message)


def scoped(progress: Progress | None, message: str) -> Progress | None:
    """A progress that reports under ``message`` whatever the inner call names its work
    (None stays None): a benchmark hands it to each part it runs."""
    if progress is None:
        return None
    return lambda done, total, _message="": progress(done, total, message)


class Collect:
    """A progress that keeps every call as ``(done, total, message)`` in :attr:`calls`, and the last
    one in :attr:`last` (a notebook widget polls it; tests read it)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, str]] = []
        self._lock = threading.Lock()

    def __call__(self, done: int, total: int, message: str = "") -> None:
        with self._lock:
            self.calls.append((int(done), int(total), str(message)))

    @property
    def last(self) -> tuple[int, int, str] | None:
        """The latest call, or None before the first."""
        with self._lock:
            return self.calls[-1] if self.calls else None


class TqdmProgress:
    """A progress drawn as tqdm bars: one bar per message (a new message closes the bar before
    it), or with ``desc`` one bar that shows each message after its count (a loss, say).

    Parameters
    ----------
    unit : str
        The bar's unit.
    leave : bool
        Keep finished bars on screen.
    desc : str, optional
        One bar named ``desc`` for all calls; the messages are its postfix.
    bar : callable, optional
        Makes a bar: ``bar(total=..., desc=..., unit=..., leave=...)`` (default ``tqdm.tqdm``;
        napari's ``napari.utils.progress`` is one too).
    **options
        More keyword arguments for ``bar`` (``file``, ``mininterval``, ``position``, ...).
    """

    def __init__(
        self,
        unit: str = "it",
        leave: bool = False,
        bar: Callable[..., Any] | None = None,
        desc: str | None = None,
        **options,
    ):
        self.unit, self.leave, self._make, self._desc, self._options = unit, leave, bar, desc, options
        self._message: str | None = None
        self._bar = None
        self._lock = threading.Lock()

    def __call__(self, done: int, total: int, message: str = "") -> None:
        with self._lock:
            name = self._desc if self._desc is not None else message
            if name != self._message or self._bar is None:
                self._close()
                self._message = name
                make = self._make if self._make is not None else _tqdm()
                self._bar = make(total=total, desc=name or None, unit=self.unit, leave=self.leave, **self._options)
            self._bar.total = total
            self._bar.n = done
            if self._desc is not None and message:
                self._bar.set_postfix_str(message, refresh=False)
            self._bar.refresh()

    def write(self, text: str) -> None:
        """Print a line above the bars (or plainly when tqdm draws none)."""
        _tqdm().write(text, file=self._options.get("file"))

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._bar, self._message = None, None

    def close(self) -> None:
        """Close the open bar."""
        with self._lock:
            self._close()

    def __enter__(self) -> TqdmProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _tqdm():
    try:
        from tqdm import tqdm
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError("progress bars need tqdm: install napari-oaims[bench] (or pip install tqdm)") from err
    return tqdm
