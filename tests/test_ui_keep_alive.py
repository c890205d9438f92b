"""The server keeps an idle connection open longer than clients keep it in their pools, so a
client never sends a request on a connection the server is closing (ui/app.py KEEP_ALIVE_S)."""
from __future__ import annotations

import http.client
import time
from urllib.parse import urlparse

import httpx

from ui.app import KEEP_ALIVE_S, start_server


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
