"""The embedded collection's one scheduler (store/scheduler.py): due times, the longest delay,
a failing job, and close."""
from __future__ import annotations

import threading
import time

from store.scheduler import Scheduler


def _recorder() -> tuple[list[tuple[str, float]], float, threading.Event]:
    return [], time.monotonic(), threading.Event()


def test_rescheduling_moves_a_job_back_but_never_past_its_longest_delay() -> None:
    runs, started, _ = _recorder()
    scheduler = Scheduler("test")
    job = lambda: runs.append(("flush", time.monotonic() - started))  # noqa: E731
    for _ in range(8):  # calls 0.1 s apart, each asking for 0.3 s of quiet
        scheduler.schedule("flush", 0.3, job, max_delay=0.5)
        time.sleep(0.1)
    time.sleep(0.6)
    scheduler.close()
    assert len(runs) == 2, runs  # at 0.5 s (the longest delay), then 0.3 s after the last call
    assert 0.45 <= runs[0][1] < 0.7 and runs[1][1] >= 0.7 + 0.3 - 0.05


def test_a_quiet_job_waits_for_its_delay_and_jobs_run_in_due_order() -> None:
    runs, started, done = _recorder()
    scheduler = Scheduler("test")
    scheduler.schedule("late", 0.3, lambda: (runs.append(("late", time.monotonic() - started)), done.set()))
    scheduler.schedule("early", 0.1, lambda: runs.append(("early", time.monotonic() - started)))
    assert scheduler.due("late") is not None and scheduler.due("nothing") is None
    assert done.wait(5)
    scheduler.close()
    assert [name for name, _ in runs] == ["early", "late"] and runs[1][1] >= 0.29


def test_a_failing_job_does_not_stop_the_others() -> None:
    done = threading.Event()
    scheduler = Scheduler("test")

    def fail() -> None:
        raise RuntimeError("disk full")

    scheduler.schedule("fails", 0.0, fail)
    scheduler.schedule("works", 0.05, done.set)
    assert done.wait(5)
    scheduler.close()


def test_close_drops_waiting_jobs_and_refuses_new_ones() -> None:
    runs: list[str] = []
    scheduler = Scheduler("test")
    scheduler.schedule("flush", 0.2, lambda: runs.append("flush"))
    scheduler.close()
    scheduler.schedule("later", 0.0, lambda: runs.append("later"))
    time.sleep(0.4)
    assert runs == [] and scheduler.due("later") is None
