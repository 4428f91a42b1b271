"""``pixdex search``'s human-readable page: one line per hit saying why it matched.

The middle column follows the query: the hit's tags among those asked for (with their
scores) for a tag search, its strongest object tags for an image or prompt search, its
own tags for a metadata search. The last column is the file the image was indexed from,
not the dataset folder, which reads like a path on disk but is not one.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from pixdex.models import TAG_KINDS, SearchHit, SearchPage, SearchQuery

# Objects shown for an image or prompt search: the tagger stores at most five, and three
# already say what the picture shows.
TOP_OBJECTS = 3


def source_file(hit: SearchHit) -> str:
    if hit.storage_key is None:
        return f"(no file: {hit.name})"
    parts = urlsplit(hit.storage_key)
    return unquote(parts.path) if parts.scheme == "file" else hit.storage_key


def _scored(tags: dict[str, float]) -> str:
    return ", ".join(f"{name} {score:.2f}" for name, score in tags.items())


def why(hit: SearchHit, query: SearchQuery) -> str:
    asked = [kind for kind in TAG_KINDS if getattr(query, kind)]
    if asked:
        from pixdex.app.tag_match import expand_tag_filter  # only tag searches pay for it

        parts = []
        for kind in asked:
            have: dict[str, float] = getattr(hit.auto_tags, kind)
            # The stored names the words meant ("Tabbies" -> tabby cat): app.tag_match.
            wanted = expand_tag_filter(kind, getattr(query, kind))
            matched = {n: have[n] for n in wanted if n in have}
            parts.append(f"{kind}: {_scored(matched)}")
        return "; ".join(parts)
    if query.is_similarity:
        ranked = sorted(hit.auto_tags.objects.items(), key=lambda item: -item[1])
        return f"objects: {_scored(dict(ranked[:TOP_OBJECTS]))}" if ranked else ""
    return f"tags: {', '.join(hit.user_tags)}" if hit.user_tags else ""


def page_lines(page: SearchPage, query: SearchQuery) -> list[str]:
    shown = f"{page.offset + 1}-{page.offset + len(page.results)}" if page.results else "none"
    lines = [f"note: {warning}" for warning in page.warnings]
    lines.append(f"{page.total} match(es); showing {shown}")
    if not page.results:
        return lines
    reasons = [why(hit, query) for hit in page.results]
    width = max(len("matched"), *(len(r) for r in reasons))
    lines.append(f"{'#':>4}  {'score':<7} {'matched':<{width}}  file")
    for rank, (hit, reason) in enumerate(zip(page.results, reasons, strict=True),
                                         start=page.offset + 1):
        lines.append(f"{rank:4d}. {hit.score:<7.4f} {reason:<{width}}  {source_file(hit)}")
    return lines
