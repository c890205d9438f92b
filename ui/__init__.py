"""embedscape's web UI: layout and callbacks only (all Qdrant access goes through `store/`).

Modules
    app.py            build_app(collection, text_encoder=None, pages=()) -> gr.Blocks
                      serve(collection, host="127.0.0.1", port=7860, text_encoder=None, auth=None, objects=None)
                      start_server(collection, port=0, ..., objects=None) -> RunningServer (.url, .stop())
                      create_server_app(...) -> FastAPI (image routes + Gradio mounted at "/";
                      with `objects`, a detection dataset's boxes as a second explorer at "/objects/")
    context.py        AppContext: what a page (tab) gets to read and drive the map
    state.py          MapState / SelectionState: one per browser session, in a gr.State
    table.py          PointTable: every point's columns in numpy, shared by all sessions
    live_table.py     LiveTable: the current PointTable, read again when other writers change it
    figure.py         Plotly layout/trace style, colours, the messages sent to the map
    map/              the map (ui/map/__init__.py): one gr.HTML component owning the Plotly chart
                      (component.py, its JS/CSS in map/assets/), the overlays drawn over it (overlays.py),
                      the routes that serve the points or a density image of the part in view
                      (routes.py, geometry.py, density.py), and share links (share_link.py: the page URL
                      applied on load and the "Copy link" control; share_link_query.py: the pure
                      explorer state <-> query parameters)
    images.py         /thumb/{id} (a box: its crop), /thumb/row/{row}, /image/{id}, /boxes/{id} (an image
                      with its boxes drawn): dataset files only, cached thumbnails
    handoff.py        the Images | Objects switch and "Show their images / objects" between the two
                      explorers of a detection dataset (selections handed over under short tokens)
    page_layout.py    the page's frame: map beside the panels, the drag handle between them
    box_quality_page.py   the Duplicate boxes tab of an object explorer
    panel_html.py     HTML of the panels beside the map: count line, grid, distribution, detail card
    split_panel.py    the Filter & Export tab's Splits row: compare two splits, select the leaks
    text.py           strings from data and links as text for HTML, toasts, Plotly and Markdown
    first_page.py     FirstPage: the address answered before Gradio is imported (a picture of the
                      map), its socket handed to the explorer's server (`serve(first_page=...)`)
    gradio_import.py  skip_stub_writer(): `import gradio` without its .pyi writer (1.3 s of every start)
    explorer.py       the Explorer tab and the map's controls (colour, filters, search, tagging)

Data flow
    The server loads the columns (path, label, tags, x, y) into a `PointTable`, and reads a
    newer one when other writers change the collection (live_table.py); a row keeps its point
    in every version, so the browser's map and the sessions' selections stay valid. The browser
    asks the view route for what its view shows (binary rows, x, y and colour codes, or a
    density image when the view holds too many) and builds one scattergl trace per colour
    itself. A box or lasso over points sends row numbers to Python (`select` event), over the
    density image the shape; the map is never sent again for it. Unselected points are dimmed
    by Plotly's own `unselected` style (over the image, by the next image).

Selection state, for later tabs
    Each session has one `MapState` (`ctx.state`, a gr.State):
        state.selection            SelectionState(rows: np.ndarray | None, source: str, scores)
        state.selected_rows()      rows of the selection, None when nothing is selected
        state.selected_ids(table)  the same as point ids
        state.shown_rows(table)    the selection, else every point the filters keep
        state.select(rows, source) set the selection (the map shows it, dimming the rest)
        state.clear()              no selection
        state.colour_by, filter_labels, filter_tags, visible (bool mask or None)
    A page is `(title, build)` passed to `build_app(..., pages=[...])`; `build(ctx)` runs in
    its own tab and uses
        ctx.table (the current table: read it in handlers), ctx.collection, ctx.text_encoder
        ctx.event(trigger, fn, inputs, outputs)        fn(state, *inputs) -> outputs, for handlers
                                                       that read the session's state
        ctx.on_selection_change(fn, inputs, outputs)   fn(state, *inputs) -> outputs, after
                                                       every selection / filter / recolour
                                                       while the page's tab is open, and
                                                       when it is opened
        ctx.map_event(trigger, fn, inputs, outputs)    fn(state, *inputs) -> state | (state, *outputs);
                                                       call state.select(...) in fn to set the
                                                       map's selection from the page
    Example, a tab that selects the points with a high score:
        def build(ctx):
            button = gr.Button("Select likely mislabels")
            ctx.map_event(button.click, lambda s: s.select(rows_with_high_score(ctx), "mislabel"))
"""

from ui.gradio_import import skip_stub_writer

skip_stub_writer()  # before any ui module imports gradio: see ui/gradio_import.py
