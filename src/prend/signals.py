"""Stopping a long job cleanly on SIGINT or SIGTERM, one behaviour for ``prend train`` and ``prend pretrain``.

While a :class:`StopFlag` is entered:

- before :meth:`StopFlag.defer` (set-up: building environments, loading data) a signal stops at once by
  raising :class:`Interrupted`, as there is nothing to save yet;
- after it (the loop), the first signal sets :attr:`StopFlag.raised` and prints a notice: the loop finishes
  its unit of work (an iteration, an optimizer step), saves and stops;
- a second signal stops at once (:class:`Interrupted`), without saving.

What the process exits with is the command's (``prend train``: 128 + the signal). The handlers are restored
on leaving. Off the main thread, where Python cannot install signal handlers, the flag never rises and
signals keep their usual effect.
"""

from __future__ import annotations

import signal
import sys
from typing import Any


class Interrupted(KeyboardInterrupt):  # noqa: N818 - a control-flow signal, like KeyboardInterrupt
    """A signal that stops the process at once (during set-up, or a second signal); a KeyboardInterrupt."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.name = signal.Signals(signum).name


class StopFlag:
    """SIGINT/SIGTERM as a flag a loop checks after each unit of work (see the module docstring).

    Args:
        notice: Printed to stderr when the first signal arrives in the loop.
        deferring: Start in the loop's mode (the first signal only sets the flag); ``False`` starts in
            set-up mode until :meth:`defer`.

    Example:
        >>> import os
        >>> with StopFlag("stopping after this step...") as stop:
        ...     os.kill(os.getpid(), signal.SIGTERM)
        ...     stop.raised == signal.SIGTERM
        True
    """

    def __init__(self, notice: str = "stopping after this step (saving)...", deferring: bool = True):
        self.notice = notice
        self.deferring = deferring
        self.raised: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def defer(self) -> None:
        """Set-up is over: from now on the first signal only sets :attr:`raised`."""
        self.deferring = True

    def _handle(self, signum: int, frame: Any) -> None:
        if not self.deferring or self.raised is not None:
            raise Interrupted(signum)
        self.raised = signum
        print(f"\n{self.notice}", file=sys.stderr)
