"""The explorer's map: the Plotly chart in the page, what it draws, and the links that share it.

Modules
    component.py         map_component(prefix, thumbnails) -> gr.HTML owning the Plotly chart; the
                         plotly.js route (add_plotly_route) and the page head that preloads it
    overlays.py          cluster names and thumbnails drawn as HTML over the plot area
    routes.py            VIEW_ROUTE / NEAR_ROUTE: the points in view, or a density image of them
                         (binary), and the point nearest the pointer; box / lasso resolved on the server
    geometry.py          which points lie in a box or lasso (pure numpy)
    density.py           the density image of a view (pure numpy + PIL)
    palette.py           the category colours, largest categories first
    share_link.py        the page URL applied on load (UrlParams) and the "Copy link" control
    share_link_query.py  the explorer's state <-> a link's query parameters (pure: LinkSpec)
    assets/              the component's JavaScript, CSS and HTML, read once when a module is imported

"View" here means one thing only: the part of the map on screen (its axis ranges and its size in
pixels), as in density.View, VIEW_ROUTE and a link's `view=` parameter.
"""
