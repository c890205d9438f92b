"""Free a closed page's server-side session soon after it closes, not an hour later.

Gradio keeps each browser session's state (our `MapState`: the selection's rows, its row mask,
the colouring) and a copy of every component's config per session. When a page closes (its
heartbeat stream ends) Gradio marks the session closed and deletes its `gr.State` values an
hour later (`SessionState.STATE_TTL_WHEN_CLOSED`); the per-session config copy stays until
10,000 sessions have been seen. bench/bench_load.py measured what that costs a shared server:
RSS grew with every page opened and closed and did not come down (docs/BENCHMARKS.md, load).

`release_closed_sessions(demo)` adds an unload handler: `grace` seconds after a page closes
(EMBEDSCAPE_SESSION_GRACE_S, default 120), unless the session was used again meanwhile (a
heartbeat that reconnected), its state is deleted the way Gradio deletes expired state and
the session is dropped from Gradio's state holder. A page that comes back after that gets a
fresh state on its next event (the map is sent whole again; the selection is gone).

Then glibc is asked to give free memory back to the system (`release_memory`): tracemalloc
found ~0.1 MB of Python objects left per closed session, while RSS stayed 12 MB up after 20;
`malloc_trim(0)` took it 41 MB below where it started (freed memory the allocator kept).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import datetime
import os
import threading
from typing import Any

import gradio as gr

GRACE_ENV = "EMBEDSCAPE_SESSION_GRACE_S"
DEFAULT_GRACE_S = 120.0


def session_grace() -> float:
    """Seconds a closed page's session is kept (EMBEDSCAPE_SESSION_GRACE_S)."""
    return float(os.environ.get(GRACE_ENV, str(DEFAULT_GRACE_S)))


def release_closed_sessions(demo: gr.Blocks, grace: float | None = None) -> None:
    """Drop each session of `demo` `grace` seconds (default `session_grace()`) after its page closed."""
    wait = session_grace() if grace is None else grace

    def closed(request: gr.Request) -> None:
        session = getattr(request, "session_hash", None)
        if session:
            timer = threading.Timer(wait, forget, args=(demo, session, datetime.datetime.now()))
            timer.daemon = True
            timer.start()

    demo.unload(closed)


def forget(demo: gr.Blocks, session: str, closed_at: datetime.datetime) -> bool:
    """Delete `session`'s state and drop it, unless it was used after `closed_at` or is open.
    Returns whether it was dropped."""
    holder: Any = getattr(demo, "state_holder", None)
    if holder is None:
        return False
    with holder.lock:
        state = holder.session_data.get(session)
        used = holder.time_last_used.get(session)
        if state is None or not state.is_closed or (used is not None and used > closed_at):
            return False
    holder.delete_state(session)  # Gradio's own deletion: each State's delete_callback runs
    with holder.lock:
        holder.session_data.pop(session, None)
        holder.time_last_used.pop(session, None)
    release_memory()
    return True


def release_memory() -> bool:
    """Hand memory glibc's malloc keeps free back to the system (malloc_trim); False where the
    C library has no malloc_trim (musl, macOS)."""
    name = ctypes.util.find_library("c")
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    if trim is None:
        return False
    trim(0)
    return True
