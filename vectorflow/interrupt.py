"""Stopping on SIGINT and SIGTERM: one process-wide event that every wait sleeps on.

Every wait of the library (rate-limit windows, Retry-After, bans, retry backoff) is `sleep()`,
which returns after its seconds or raises `Interrupted` as soon as a stop is requested, in
whichever thread it runs. The CLI calls `install_handlers()`: the first SIGINT or SIGTERM
requests the stop (every wait wakes within milliseconds), notes what was waiting, and raises
`StopRequested` in the main thread; a second signal acts as it would without VectorFlow.

SIGTERM is also seen through the signal wakeup fd, because Prefect replaces the SIGTERM
handler while a flow runs (it raises its own TerminationSignal in the main thread, and waits
for the running tasks, which must therefore wake).
"""

from __future__ import annotations

import signal
import socket
import threading
from datetime import UTC, datetime

from vectorflow.errors import Interrupted

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_stop = threading.Event()
_signal: int | None = None
_waits: dict[int, str] = {}  # thread -> what it waits for (plain dict ops: signal-safe)
_waiting_at_stop: list[str] = []
_wakeup: tuple[socket.socket, socket.socket] | None = None


class StopRequested(KeyboardInterrupt):
    """Raised in the main thread by the first SIGINT or SIGTERM (after the stop is requested)."""


def request_stop(signum: int) -> None:
    """Wake every wait now and make the next ones raise; note what was waiting."""
    global _signal
    if _signal is None:
        _signal = signum
        _waiting_at_stop.extend(dict.fromkeys(_waits.values()))
    _stop.set()


def stop_signal() -> int | None:
    """The signal that requested the stop, None while none did."""
    return _signal if _stop.is_set() else None


def cut_short() -> list[str]:
    """What was waiting when the stop came (empty before a stop, or if nothing waited)."""
    return list(_waiting_at_stop)


def check(what: str = "") -> None:
    """Raise Interrupted if a stop was requested (before starting something new)."""
    if _stop.is_set():
        raise Interrupted(f"stopped before {what}" if what else "stopped")


def sleep(seconds: float, what: str) -> None:
    """Wait `seconds`; Interrupted within milliseconds of a stop. `what` says what waits."""
    me = threading.get_ident()
    _waits[me] = what
    try:
        if _stop.wait(max(seconds, 0.0)):
            raise Interrupted(f"{what}; stopped while waiting")
    finally:
        _waits.pop(me, None)


def until_text(t: float) -> str:
    """A wall-clock time (epoch seconds) as `HH:MM:SS UTC`, for what-waits descriptions."""
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S UTC")


def stopped_line() -> str:
    """The one line the CLI prints after a stop: what was waiting, and that a rerun resumes."""
    if waits := cut_short():
        return f"{'; '.join(waits[:3])}; stopped while waiting — the next run resumes"
    name = signal.Signals(_signal).name if _signal else "a signal"
    return f"stopped by {name} — the next run resumes"


def install_handlers() -> None:
    """Make SIGINT and SIGTERM request the stop (in the main thread; elsewhere nothing)."""
    global _wakeup
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers (a command run from a test's thread)
    for signum in STOP_SIGNALS:
        signal.signal(signum, _on_signal)
    if _wakeup is None:
        reader, writer = socket.socketpair()
        writer.setblocking(False)
        signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        _wakeup = (reader, writer)
        watcher = threading.Thread(target=_watch, args=(reader,), name="vf-signals", daemon=True)
        watcher.start()


def _on_signal(signum: int, frame) -> None:
    request_stop(signum)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # a second signal acts at once
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise StopRequested(signal.Signals(signum).name)


def _watch(reader: socket.socket) -> None:
    """Request the stop for a stop signal seen by any handler (the wakeup fd gets them all)."""
    while data := reader.recv(64):
        for signum in data:
            if signum in STOP_SIGNALS:
                request_stop(signum)


def reset() -> None:
    """Forget a stop (tests that request one in-process)."""
    global _signal
    _stop.clear()
    _signal = None
    _waiting_at_stop.clear()
