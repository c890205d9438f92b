"""`AppContext`: what every page (tab) of the app gets to read and drive the shared map.

A page builder is `def build(ctx: AppContext) -> None`, called inside its own `gr.Tab`.
It may
  * read the session's selection: any handler taking `ctx.state` as an input gets the
    session's `MapState` (`state.selected_rows()`, `state.shown_rows(ctx.table)`);
  * follow the selection: `ctx.on_selection_change(fn, inputs, outputs)` runs
    `fn(state, *inputs) -> outputs` after every selection, filter or recolour while its tab
    is open, and when the tab is opened (the Explorer's own followers always run);
  * set the selection: `ctx.map_event(button.click, fn, inputs, outputs)` wires a handler
    `fn(state, *inputs) -> state | (state, *outputs)` that calls `state.select(rows, source)`;
    the map is updated with only what changed, and the selection followers run in the same
    event (one reply); a parameter of `fn` annotated `gr.Request` gets the page's request
    (e.g. its URL's query parameters on load);
  * wire any other handler that takes the session's state with `ctx.event(trigger, fn,
    inputs, outputs)`: `fn(state, *inputs)`, after the session has caught up with the table.

`ctx.table` is the current table: other writers' edits can replace it while the app runs
(ui/live_table.py), so read `ctx.table` inside handlers rather than keeping the one seen at
build time. Every handler wired through the context gets a state that has caught up with it
(`MapState.catch_up`).
"""
from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
import numpy as np

from store import Collection
from ui.edit_watch import acknowledgement
from ui.figure import map_message
from ui.state import MapState
from ui.live_table import LiveTable
from ui.table import PointTable

TextEncoder = Callable[[str], np.ndarray]
log = logging.getLogger(__name__)


@dataclass
class _Listener:
    fn: Callable[..., Any]
    inputs: list[Any]
    outputs: list[Any]
    page: str | None  # the tab it belongs to; None: runs whichever tab is open


@dataclass
class _MapEvent:
    trigger: Callable[..., Any]
    fn: Callable[..., Any]
    inputs: list[Any]
    outputs: list[Any]
    name: str
    only_on_change: bool  # skip the event (and the followers) unless the table changed


@dataclass
class _Page:
    tab: Any  # gr.Tab
    lazy: bool  # its followers run only while it is open


@dataclass
class AppContext:
    collection: Collection
    live: LiveTable
    text_encoder: TextEncoder | None
    map: gr.HTML
    state: gr.State
    _listeners: list[_Listener] = field(default_factory=list)
    _map_events: list[_MapEvent] = field(default_factory=list)
    _wired: bool = False
    _map_select_fn: Callable[[MapState, dict[str, Any]], MapState] | None = None
    _pages: dict[str, _Page] = field(default_factory=dict)
    _building: str | None = None  # the page whose builder is running
    edit_ack: gr.HTML | None = None  # ui/edit_watch.py: an edit's reply sets it
    objects: Collection | None = None  # an image explorer's object collection (detection datasets)


    @property
    def table(self) -> PointTable:
        """The current table (a newer one replaces it when other writers change the collection)."""
        return self.live.table

    def event(self, trigger: Callable[..., Any], fn: Callable[..., Any], inputs: Sequence[Any] = (),
              outputs: Sequence[Any] = (), **options: Any) -> None:
        """Wire `trigger` to `fn(state, *inputs)`: the session's state is caught up with the
        current table first. For handlers that change only their own outputs (and the state)."""

        def handler(state: MapState, *args: Any) -> Any:
            state.catch_up(self.table)
            return fn(state, *args)

        def handler_with_event(state: MapState, evt: gr.EventData, *args: Any) -> Any:
            state.catch_up(self.table)
            return fn(state, evt, *args)

        options.setdefault("show_progress", "hidden")
        if _takes_event_data(fn):  # Gradio passes the event's data to a parameter annotated so
            handler = handler_with_event
        trigger(handler, inputs=[self.state, *inputs], outputs=list(outputs), **options)

    @contextmanager
    def page(self, title: str, tab: Any, lazy: bool = True) -> Iterator[None]:
        """Build the tab `title` (a gr.Tab) inside this block. A lazy page's followers skip
        the selection changes made while another tab is open and catch up when it opens:
        a hidden view costs nothing (and does not read Qdrant) on every selection."""
        self._pages[title] = _Page(tab, lazy)
        self._building = title if lazy else None
        try:
            yield
        finally:
            self._building = None

    def on_selection_change(self, fn: Callable[..., Any], inputs: Sequence[Any] = (),
                            outputs: Sequence[Any] = ()) -> None:
        """Run `fn(state, *inputs)` (returning values for `outputs`) after each selection change."""
        self._listeners.append(_Listener(fn, list(inputs), list(outputs), self._building))

    def map_event(self, trigger: Callable[..., Any], fn: Callable[..., Any], inputs: Sequence[Any] = (),
                  outputs: Sequence[Any] = (), name: str | None = None, only_on_change: bool = False,
                  acknowledge: bool = False) -> None:
        """Wire `trigger` (e.g. `button.click`) to a handler that changes the MapState.

        Registered by `wire_followers` as one event with the selection followers, so the map,
        the handler's outputs and every view that follows the selection come in one reply.
        With `acknowledge` (an edit), the reply also tells the page's edit watch that the server
        answered (ui/edit_watch.py).
        With `only_on_change` (a timer's tick), nothing runs unless `fn`, or another writer,
        gave the session a newer table to catch up with.
        """
        if self._wired:
            raise RuntimeError("map_event after wire_followers: call it while building the pages")
        if acknowledge and self.edit_ack is not None:  # an edit: the page's edit watch sees its reply
            fn, outputs = _acknowledging(fn), [*outputs, self.edit_ack]
        self._map_events.append(_MapEvent(trigger, fn, list(inputs), list(outputs), name or fn.__name__,
                                          only_on_change))

    def map_select_event(self, fn: Callable[[MapState, dict[str, Any]], MapState]) -> None:
        """The map's own box/lasso/deselect event; `fn(state, payload)` gets the JS payload.

        Wired by `wire_followers` as one event with the followers: the map already shows the
        selection it made, so nothing waits for a first reply (one round trip, not two).
        """
        self._map_select_fn = fn

    def _finish(self, result: Any) -> tuple[Any, ...]:
        state, extra = (result[0], result[1:]) if isinstance(result, tuple) else (result, ())
        message = map_message(self.table, state)
        return (state, gr.skip() if message is None else message, *extra)

    def wire_followers(self) -> None:
        """Register every map event with the selection followers (called once, after all pages)."""
        self._wired = True
        inputs = [c for listener in self._listeners for c in listener.inputs]
        outputs = [c for listener in self._listeners for c in listener.outputs]

        @timed_function("follow")
        def follow(state: MapState, *args: Any) -> list[Any]:
            state.catch_up(self.table)
            return _run_listeners(self._listeners, state, args, lambda page: page in (None, state.open_page))

        for event in self._map_events:
            self._wire_map_event(event, follow, inputs, outputs)
        if self._map_select_fn is not None:
            self._wire_map_select(self._map_select_fn, follow, inputs, outputs)
        for title, page in self._pages.items():
            self._wire_page_open(title, page)

    def _wire_map_event(self, event: _MapEvent, follow: Callable[..., list[Any]],
                        follower_inputs: list[Any], follower_outputs: list[Any]) -> None:
        """`event`'s handler, then the followers, in one Gradio event. A component both write
        (e.g. a status line) gets the follower's value unless the follower skipped it."""
        outputs = [self.state, self.map, *event.outputs]
        slot = {id(component): i for i, component in enumerate(outputs)}
        for component in follower_outputs:
            if id(component) not in slot:
                slot[id(component)] = len(outputs)
                outputs.append(component)
        targets = [slot[id(component)] for component in follower_outputs]
        own_inputs = len(event.inputs)
        request_name = _request_parameter(event.fn)

        def run(state: MapState, args: tuple[Any, ...], request: Any) -> tuple[Any, ...]:
            seen = state.table_version
            state.catch_up(self.table)
            with timed(event.name):
                result = event.fn(state, *args[:own_inputs], **({request_name: request} if request_name else {}))
            if event.only_on_change and not state.catch_up(self.table) and state.table_version == seen:
                return tuple(gr.skip() for _ in outputs)
            values = [*self._finish(result)]
            values += [gr.skip()] * (len(outputs) - len(values))
            for target, value in zip(targets, follow(values[0], *args[own_inputs:])):
                if not _is_skip(value):
                    values[target] = value
            return tuple(values)

        def handler(state: MapState, *args: Any) -> tuple[Any, ...]:
            return run(state, args, None)

        def handler_with_request(state: MapState, request: gr.Request, *args: Any) -> tuple[Any, ...]:
            return run(state, args, request)

        event.trigger(handler_with_request if request_name else handler,
                      inputs=[self.state, *event.inputs, *follower_inputs], outputs=outputs, show_progress="hidden")

    def _wire_page_open(self, title: str, page: _Page) -> None:
        """Opening a tab records it in the session's state and brings its followers up to date."""
        own = [listener for listener in self._listeners if listener.page == title] if page.lazy else []

        def opened(state: MapState, *args: Any) -> Any:
            state.catch_up(self.table)
            state.open_page = title if page.lazy else None
            with timed("page_open"):
                return _single([state, *_run_listeners(own, state, args, lambda _: True)])

        page.tab.select(opened, inputs=[self.state, *(c for listener in own for c in listener.inputs)],
                        outputs=[self.state, *(c for listener in own for c in listener.outputs)],
                        show_progress="hidden")

    def _wire_map_select(self, select: Callable[[MapState, dict[str, Any]], MapState],
                         follow: Callable[..., list[Any]], inputs: list[Any], outputs: list[Any]) -> None:
        def handler(state: MapState, evt: gr.EventData, *args: Any) -> tuple[Any, ...]:
            state.catch_up(self.table)  # rows keep their meaning across tables (ui/table.py)
            with timed("map_select"):
                state, message = self._finish(select(state, evt._data.get("value") or {}))
            return (state, message, *follow(state, *args))

        self.map.select(handler, inputs=[self.state, *inputs], outputs=[self.state, self.map, *outputs],
                        show_progress="hidden")


def _run_listeners(listeners: Sequence[_Listener], state: MapState, args: Sequence[Any],
                   runs: Callable[[str | None], bool]) -> list[Any]:
    """The listeners' outputs, in order, from their slices of `args`; gr.skip() for every output
    of a listener whose page `runs` rejects."""
    out: list[Any] = []
    position = 0
    for listener in listeners:
        own = args[position:position + len(listener.inputs)]
        position += len(listener.inputs)
        if not runs(listener.page):
            out.extend(gr.skip() for _ in listener.outputs)
            continue
        result = listener.fn(state, *own)
        if len(listener.outputs) == 1:
            result = (result,)
        out.extend(result or ())
    return out


def _takes_event_data(fn: Callable[..., Any]) -> bool:
    return any(p.annotation in (gr.EventData, "gr.EventData", "EventData")
               for p in inspect.signature(fn).parameters.values())


def _request_parameter(fn: Callable[..., Any]) -> str | None:
    """The name of `fn`'s parameter annotated `gr.Request` (the page's request: its URL's query
    parameters, headers), if it has one."""
    for name, p in inspect.signature(fn).parameters.items():
        if p.annotation in (gr.Request, "gr.Request", "Request"):
            return name
    return None


def _is_skip(value: Any) -> bool:
    return isinstance(value, dict) and value == gr.skip()


def _single(values: list[Any]) -> Any:
    """Gradio wants a bare value for one output, a tuple for several."""
    return values[0] if len(values) == 1 else tuple(values)


class timed:
    """Logs how long a handler took (logger "ui.context", DEBUG): the benchmark reads it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        log.debug("handler %s took %.2f ms", self.name, 1000 * (time.perf_counter() - self.started))


def timed_function(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            with timed(name):
                return fn(*args)
        return run
    return wrap


def _acknowledging(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` whose reply also carries an acknowledgement for the page's edit watch (last output)."""

    def acknowledged(*args: Any) -> tuple[Any, ...]:
        result = fn(*args)
        return (*(result if isinstance(result, tuple) else (result,)), acknowledgement())

    return acknowledged
