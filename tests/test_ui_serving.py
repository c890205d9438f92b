"""How the app serves pages: an idle connection is kept open longer than clients keep it in
their pools, so a client never sends a request on a connection the server is closing
(ui/app.py KEEP_ALIVE_S); a page carries no API description of the page's events."""
from __future__ import annotations

import asyncio
import http.client
import time
from urllib.parse import urlparse

import httpx
from fastapi.testclient import TestClient

from test_bench_load import load_bench
from ui.app import KEEP_ALIVE_S, PROGRESS_POLL_S, QUEUE_POLL_S, create_server_app, start_server


def test_a_connection_idle_past_the_clients_pool_expiry_still_answers(ui_collection) -> None:
    _, collection, _ = ui_collection
    pool_expiry = httpx.Limits().keepalive_expiry  # httpx's default: the bench's and many clients'
    assert KEEP_ALIVE_S > 60 > pool_expiry  # and longer than nginx's and AWS ALB's 60 s
    server = start_server(collection)
    address = urlparse(server.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        connection.request("GET", "/thumb/row/0")
        first = connection.getresponse()
        assert first.status == 200 and first.read()[:4] == b"\x89PNG"
        sock = connection.sock
        # Idle for longer than the client's pool keeps a connection: uvicorn's default of 5 s
        # closes it here, and the next request on it is cut (RemoteDisconnected).
        time.sleep(pool_expiry + 1.5)
        connection.request("GET", "/thumb/row/1")
        second = connection.getresponse()
        assert second.status == 200 and second.read()[:4] == b"\x89PNG"
        assert connection.sock is sock  # the same connection answered, none was opened again
    finally:
        connection.close()
        server.stop()


def test_a_page_carries_no_api_description_its_events_answer_and_the_queue_polls_less(ui_collection) -> None:
    _, collection, _ = ui_collection
    bench = load_bench()
    with TestClient(create_server_app(collection)) as http:
        html = http.get("/").text
        # Gradio writes each documented event's description and code examples into every page.
        assert "code_snippets" not in html and '"named_endpoints":{}' in html.replace(" ", "")
        assert '"footer_links":["gradio","settings","runs"]' in html.replace(" ", "")  # no "Use via API"
        config = http.get("/config").json()
        visibility = [d["api_visibility"] for d in config["dependencies"]]
        assert "public" not in visibility and visibility.count("undocumented") > 20
        # Gradio's queue polls every 10 ms when idle, not every 1 ms (80 ms of CPU a second).
        queue = http.app.state.embedscape._queue
        assert (queue.sleep_when_free, queue.progress_update_sleep_when_free) == (QUEUE_POLL_S, PROGRESS_POLL_S)
        assert QUEUE_POLL_S >= 0.01
    server = start_server(collection)
    try:  # the page's events answer as before: the load event sends the map
        async def load() -> list:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
                page = bench.Page((await client.get("/config")).json())
                return await bench.call(client, page, "serving1", page.event(None, "load"), None)

        assert bench.map_message(asyncio.run(load()))["base"]["token"]
    finally:
        server.stop()
