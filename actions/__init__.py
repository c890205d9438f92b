"""Edits of points and actions on the points a filter matches: the one module that edits
points (actions.edits: tags, exclude / restore, relabel, review decisions; the app and the
command line alike), tagging by filter (actions.tagging) and deleting (actions.deletion). The
app's selection and the command line (`python app.py tag` / `delete`) both come here."""
