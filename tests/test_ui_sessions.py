"""A closed page's session is released after the grace (ui/sessions.py); an open one is kept."""
from __future__ import annotations

import asyncio
import gc
import time

import httpx
import pytest

from test_bench_load import load_bench
from ui.map import routes as map_routes
from ui.app import start_server


async def _open(client: httpx.AsyncClient, bench, page, session: str) -> tuple[asyncio.Task, str]:
    """A page as the browser opens it: the heartbeat stream, then the load event; its map token."""
    async def heartbeat() -> None:
        async with client.stream("GET", f"/gradio_api/heartbeat/{session}", timeout=None) as stream:
            async for _ in stream.aiter_lines():
                pass

    task = asyncio.create_task(heartbeat())
    values = await bench.call(client, page, session, page.event(None, "load"), None)
    return task, bench.map_message(values)["base"]["token"]


def test_a_closed_page_is_released_after_the_grace_and_an_open_one_kept(
        ui_collection, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDSCAPE_SESSION_GRACE_S", "1")
    _, collection, _ = ui_collection
    server = start_server(collection)
    holder = server.app.state.embedscape.state_holder
    bench = load_bench()

    async def visit() -> tuple[str, str]:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            page = bench.Page((await client.get("/config")).json())
            closing, closed_token = await _open(client, bench, page, "closing1")
            staying, open_token = await _open(client, bench, page, "staying1")
            assert {"closing1", "staying1"} <= set(holder.session_data)
            closing.cancel()  # the tab closes
            await asyncio.gather(closing, return_exceptions=True)
            deadline = time.monotonic() + 20
            while "closing1" in holder.session_data and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.5)  # past the grace of the open page too, had it been closed
            assert "closing1" not in holder.session_data
            assert "staying1" in holder.session_data
            assert map_routes.session(open_token) is not None
            staying.cancel()
            await asyncio.gather(staying, return_exceptions=True)
            return closed_token, open_token

    try:
        closed_token, open_token = asyncio.run(visit())
        gc.collect()
        assert map_routes.session(closed_token) is None  # its MapState is gone
    finally:
        server.stop()


def test_release_memory_hands_freed_memory_back_to_the_system() -> None:
    from pathlib import Path

    from ui.sessions import release_memory

    def rss_mb() -> float:
        return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) / 1024

    release_memory()
    start = rss_mb()
    # Many small blocks (as a session's objects are), freed in an order that leaves the heap's
    # top in use: glibc keeps the freed space unless asked to give it back.
    blocks = [bytes(1000) + bytes([i % 256]) for i in range(200_000)]  # above pymalloc's 512 B: malloc's
    keep = blocks[::64]  # one block in 64 stays: the heap cannot shrink from its top
    del blocks
    gc.collect()
    kept = rss_mb()
    assert release_memory()
    assert kept - start > 80, (start, kept)  # glibc kept the freed blocks
    assert rss_mb() < kept - 50, (start, kept, rss_mb())
    assert keep
