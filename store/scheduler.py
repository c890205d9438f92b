"""One background thread per embedded collection that runs its deferred jobs when they fall due.

An embedded collection defers three kinds of work off the caller's path (store/edge.py):
applying journaled tag edits to the engine, writing the columns cache file, and flushing the
engine's segments. Each is a named job here with one due time; scheduling a job again moves
its due time (a burst of edits pushes the flush back), but never past the latest time fixed
when it was first scheduled (`max_delay`), and `close` drops every job that has not started. Jobs run one at a time on the scheduler's thread, in due order; a job that raises is
logged and does not stop the others (each job's owner keeps what it needs to retry).

    scheduler = Scheduler("fashion-mnist")
    scheduler.schedule("flush", 5.0, flush, max_delay=30.0)   # 5 s after the last call, 30 s at most
    scheduler.due("flush")        # the time.monotonic() it will run at, or None
    scheduler.close()             # nothing scheduled runs after this returns
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)
Job = Callable[[], None]


class Scheduler:
    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: dict[str, tuple[float, float, Job]] = {}  # name -> (due, latest, job)
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def schedule(self, name: str, delay: float, job: Job, max_delay: float | None = None) -> None:
        """Run `job` as `name` once `delay` seconds have passed since this call; a job of that
        name already waiting is replaced. With `max_delay`, the job runs at the latest that
        long after it was first scheduled (from when none of that name was waiting), however
        often it is scheduled again: `max_delay=delay` keeps the first call's due time."""
        now = time.monotonic()
        with self._wake:
            if self._closed:
                return
            waiting = self._jobs.get(name)
            latest = waiting[1] if waiting is not None else now + (math.inf if max_delay is None else max_delay)
            self._jobs[name] = (min(now + delay, latest), latest, job)
            self._ensure_thread()
            self._wake.notify()

    def due(self, name: str) -> float | None:
        with self._wake:
            waiting = self._jobs.get(name)
            return None if waiting is None else waiting[0]

    def cancel(self, name: str) -> None:
        with self._wake:
            self._jobs.pop(name, None)

    def close(self, timeout: float = 10.0) -> None:
        """Drop every waiting job and stop the thread; a job already running finishes first."""
        with self._wake:
            self._closed = True
            self._jobs.clear()
            self._wake.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _ensure_thread(self) -> None:
        """Called with `_wake` held."""
        if self._thread is None:
            # A daemon: a process that exits without close() loses only deferred work whose
            # owner made it safe to lose (journal on disk, cache rebuilt, write-ahead log).
            self._thread = threading.Thread(target=self._run, name=f"embedscape-{self.name}", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._next_due_job()
            if job is None:
                return
            name, run = job
            try:
                run()
            except Exception:  # the job's owner keeps what it needs to retry; keep serving the others
                log.exception("deferred job %r of collection '%s' failed", name, self.name)

    def _next_due_job(self) -> tuple[str, Job] | None:
        """Wait for the earliest job to fall due and take it off the list; None once closed."""
        with self._wake:
            while not self._closed:
                if not self._jobs:
                    self._wake.wait()
                    continue
                name, (due, _, job) = min(self._jobs.items(), key=lambda item: item[1][0])
                wait = due - time.monotonic()
                if wait <= 0:
                    del self._jobs[name]
                    return name, job
                self._wake.wait(wait)
            return None
