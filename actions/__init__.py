"""Actions on the points a filter matches: tagging (actions.tagging: add / remove a tag,
exclude / restore) and deleting (actions.deletion). The app's selection and the command line
(`python app.py tag` / `delete`) both come here."""
