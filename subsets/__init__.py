"""Named subsets of a collection: saving, listing, renaming, deleting them (subsets.saved, kept in
the Qdrant payloads so other tools see them) and comparing two of them (subsets.compare)."""
