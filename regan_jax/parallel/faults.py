"""A process that fails stops the others: bounded detection and one line naming it.

Without this, a failing process leaves the others waiting in a collective or
at JAX's shutdown barrier until JAX's own timeouts (100 s of missed
heartbeats, 300 s at shutdown), and they die with a C++ abort. With it, a
multi-process run has a failure bound ``T`` (``--process-timeout``, default
:data:`DEFAULT_TIMEOUT_S`):

- ``jax.distributed.initialize`` gets ``heartbeat_timeout_seconds=T``: JAX
  ends every process at most ``T`` after one stops (its backstop);
- every process runs a watch thread (:func:`start_watch`) that beats in the
  coordination service's key-value store every :func:`beat_interval` and
  reads the others' beats and failure records;
- a process whose command fails (:func:`leave`, called by the command
  lines' error handler) prints its line, records ``(exit code, line)``
  under ``regan_jax/failed/<id>``, waits (at most ``T / 2``) until every
  other process has seen it, and exits at once, skipping JAX's shutdown
  barrier;
- a process whose watch sees another's record prints ``error: process J of
  N failed: <its line>`` and exits with J's code; one that sees another's
  beats stop for ``T / 2`` (killed, crashed, or its host gone) prints
  ``error: process J of N stopped responding for S s (killed, crashed or
  hung); stopping`` and exits 1. A process whose command fails first waits
  until the others beat again (two beats), so an error caused by a dead
  peer (a broken collective) is that peer's verdict, not its own.

So every process exits within about ``T / 2`` of a failure (``T`` at
most, JAX's own bound), each with one line. The coordinator (process 0)
dying is the exception: JAX's client then aborts the others at once with its
own message (naming no process), before any watch can speak.
"""

import atexit
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable

import jax
from jax._src import distributed as jax_distributed

# Seconds of silence after which a process is taken for dead (JAX's heartbeat
# timeout; the watch decides at half of it).
DEFAULT_TIMEOUT_S = 60
# Exit status of a process stopped because another stopped responding.
PEER_EXIT = 1
_PREFIX = "regan_jax"


def check_timeout(seconds) -> int:
    """``seconds`` as the failure bound, an integer >= 2.

    Raises:
      ValueError: anything else, naming the value.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 2:
        raise ValueError(f"process timeout {seconds!r}: expected an integer number of seconds >= 2")
    return seconds


def beat_interval(timeout_s: int) -> float:
    """Seconds between two beats of a watch: a tenth of the bound, within [0.2, 1]."""
    return min(1.0, max(0.2, timeout_s / 10))


class _Watch:
    """This process's watch: beats, reads the others', decides once (see the module docstring)."""

    def __init__(self, client, process: int, processes: int, timeout_s: int):
        self.client, self.process, self.processes = client, process, processes
        self.timeout_s, self.interval = timeout_s, beat_interval(timeout_s)
        self.verdict = threading.Lock()  # Taken by whoever prints the one line; never released.
        self.leaving = False  # Set at exit: the client goes away, nothing more to say.
        self._seen = {}  # process -> (last beat value, monotonic time it changed)

    def others(self):
        return [p for p in range(self.processes) if p != self.process]

    def run(self):
        beat, start = 0, time.monotonic()
        self._seen = {p: (None, start) for p in self.others()}
        while True:  # Beats until the process ends (a verdict claimed elsewhere included).
            try:
                beat += 1
                self.client.key_value_set(
                    f"{_PREFIX}/beat/{self.process}", str(beat), allow_overwrite=True
                )
                records = dict(self.client.key_value_dir_get(f"{_PREFIX}/failed/"))
                beats = dict(self.client.key_value_dir_get(f"{_PREFIX}/beat/"))
            except Exception as e:  # The coordination service is gone.
                if not self.leaving:
                    self.stop(
                        PEER_EXIT,
                        f"error: process {self.process} of {self.processes} "
                        f"lost the coordinator (process 0): {_first_line(e)}",
                    )
                return
            for key, text in sorted(records.items()):
                failed = int(key.rsplit("/", 1)[1])
                if failed != self.process:
                    try:  # Lets the failed process exit (it waits for this, T / 2 at most).
                        self.client.key_value_set(
                            f"{_PREFIX}/seen/{failed}/{self.process}", "1", allow_overwrite=True
                        )
                    except Exception:
                        pass
                    code, line = json.loads(text)
                    self.stop(
                        code,
                        f"error: process {failed} of {self.processes} failed: "
                        f"{line.removeprefix('error: ')}",
                    )
            now = time.monotonic()
            for p in self.others():
                value = beats.get(f"{_PREFIX}/beat/{p}")
                if value != self._seen[p][0]:
                    self._seen[p] = (value, now)
                elif now - self._seen[p][1] >= self.timeout_s / 2 and not self.leaving:
                    self.stop(
                        PEER_EXIT,
                        f"error: process {p} of {self.processes} stopped "
                        f"responding for {now - self._seen[p][1]:.0f} s (killed, crashed "
                        "or hung); stopping",
                    )
            time.sleep(self.interval)

    def stop(self, code: int, line: str):
        """Prints ``line`` and ends this process with ``code``, unless a verdict was given."""
        if not self.verdict.acquire(blocking=False):
            return
        _exit(code, line)

    def claim(self):
        """Takes the verdict for this process's own failure (or waits for the watch's exit)."""
        if not self.verdict.acquire(blocking=False):
            threading.Event().wait()  # The watch is ending the process with its verdict.

    def leave(self, code: int, line: str):
        """Records this process's failure, waits until the others saw it, exits ``code``.

        The verdict is claimed and ``line`` printed; the others print it after
        this process's id.
        """
        try:
            self.client.key_value_set(
                f"{_PREFIX}/failed/{self.process}", json.dumps([code, line]), allow_overwrite=True
            )
            deadline = time.monotonic() + self.timeout_s / 2
            while time.monotonic() < deadline:
                seen = self.client.key_value_dir_get(f"{_PREFIX}/seen/{self.process}/")
                if len(seen) >= self.processes - 1:
                    time.sleep(self.interval)  # Their line printed before the service goes.
                    break
                time.sleep(self.interval / 2)
        except Exception:  # The coordinator is gone: nobody left to tell.
            pass
        _exit(code)

    def await_verdict(self):
        """Returns once every other process beat again; a dead one is named by the watch first.

        An error here may be another process's death seen through a broken
        collective (or through whatever wrapped it), so this process blames
        itself only once the others are known alive: two beats for a healthy
        run, ``T / 2`` and two beats at most.
        """
        since = time.monotonic()
        deadline = since + self.timeout_s / 2 + 2 * self.interval
        while time.monotonic() < deadline:
            if self.verdict.locked():
                threading.Event().wait()  # The watch is ending the process with its verdict.
            if all(self._seen.get(p, (None, since))[1] > since for p in self.others()):
                return
            time.sleep(self.interval / 2)


_WATCH: list = []  # This process's watch, once started.


def start_watch(timeout_s: int) -> None:
    """Starts this process's watch thread (after ``jax.distributed.initialize``)."""
    watch = _Watch(
        jax_distributed.global_state.client, jax.process_index(), jax.process_count(), timeout_s
    )
    _WATCH.append(watch)
    atexit.register(lambda: setattr(watch, "leaving", True))  # Runs before JAX's shutdown.
    threading.Thread(target=watch.run, name="regan_jax-watch", daemon=True).start()


def leave(error: BaseException, report: Callable[[], int] | None) -> int | None:
    """After a command failed with ``error``: in a multi-process run, tell the others and exit.

    ``report()`` prints the command's one line (the first line of ``error``)
    and returns its exit status; None is a crash: its traceback is printed
    here and the status is 1. With one process (no watch) this is just
    ``report()`` (None for a crash, which the caller re-raises). It first
    waits until the others are seen alive (:meth:`_Watch.await_verdict`): a
    collective broken by a dead process is that process's failure, named by
    the watch.
    """
    if not _WATCH:
        return None if report is None else report()
    watch = _WATCH[0]
    watch.await_verdict()
    watch.claim()  # From here on the watch prints nothing: this process's line is the one.
    line = _first_line(error)
    if report is None:
        traceback.print_exception(error)
        code, line = 1, f"{type(error).__name__}: {line}"
    else:
        code = report()
    watch.leave(code, line)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _exit(code: int, line: str | None = None):
    """Prints ``line`` (if any) to stderr and ends the process now (no JAX shutdown barrier)."""
    if line is not None:
        print(line, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
