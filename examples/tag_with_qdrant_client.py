"""Another tool working on an embedscape collection through qdrant-client alone.

Lists the points tagged TAG and, with --add-tag, adds a tag to them. embedscape keeps tags
in each point's `tags` payload list; an explorer open on the same server shows the new tag
within seconds (README: Sharing a collection).

    python examples/tag_with_qdrant_client.py --url http://localhost:6333 --collection fashion-mnist \
        --tag snowy --add-tag reviewed
    python examples/tag_with_qdrant_client.py --path ./local-qdrant --collection c --tag snowy

(--path is qdrant-client's local mode; the embedded store of `python app.py` is a Qdrant Edge
shard instead: push it to a server first with `python app.py push`.)
"""
from __future__ import annotations

import argparse
import sys

from qdrant_client import QdrantClient, models


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="Qdrant server, e.g. http://localhost:6333")
    where.add_argument("--path", help="qdrant-client local-mode folder")
    parser.add_argument("--api-key")
    parser.add_argument("--collection", required=True)
    parser.add_argument("--tag", required=True, help="list the points that have this tag")
    parser.add_argument("--add-tag", help="and add this tag to each of them")
    args = parser.parse_args(argv)

    client = QdrantClient(url=args.url, api_key=args.api_key) if args.url else QdrantClient(path=args.path)
    try:
        has_tag = models.Filter(must=[models.FieldCondition(key="tags", match=models.MatchValue(value=args.tag))])
        points, offset = [], None
        while True:
            batch, offset = client.scroll(args.collection, scroll_filter=has_tag, limit=1000, offset=offset,
                                          with_payload=["path", "label", "tags"])
            points.extend(batch)
            if offset is None:
                break
        for point in points:
            print(f"{point.id}\t{point.payload.get('path', '')}\t{point.payload.get('label', '')}")
        print(f"{len(points)} points tagged {args.tag!r}", file=sys.stderr)
        if args.add_tag:
            # Tags are a list: read, add, write back. Points with the same new list go in one call.
            groups: dict[tuple[str, ...], list] = {}
            for point in points:
                tags = list(point.payload.get("tags") or [])
                if args.add_tag not in tags:
                    groups.setdefault(tuple([*tags, args.add_tag]), []).append(point.id)
            for tags, ids in groups.items():
                client.set_payload(args.collection, payload={"tags": list(tags)}, points=ids, wait=True)
            print(f"added {args.add_tag!r} to {sum(len(i) for i in groups.values())} points", file=sys.stderr)
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
