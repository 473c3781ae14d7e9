"""Search models on the Hub: free text, filters, sort, and cursor paging.

One call fetches one page. The Hub pages with ``Link: <...>; rel="next"`` headers (like GitHub); the
query string of that link is the opaque ``next_cursor`` that a caller hands back to fetch the next page
later (the TUI's "load more"). A cursor is always sent to ``settings.endpoint`` (never to a host a
response named), so the token cannot leak to another server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from hubmgr.config import Settings
from hubmgr.errors import UsageError
from hubmgr.hub.client import (
    ensure_online,
    http_get,
    json_body,
    resolve_settings,
    _unsupported,
)

#: Our sort keys -> the API's names. The Hub sorts descending by default.
SORT_KEYS: dict[str, str] = {
    "downloads": "downloads",
    "likes": "likes",
    "trending": "trendingScore",
    "last_modified": "lastModified",
}

#: Properties asked of the API (``expand``), so each result carries every field of a ModelSummary.
EXPAND = ["pipeline_tag", "library_name", "downloads", "likes", "lastModified", "gated", "tags"]

MAX_LIMIT = 1000


@dataclass(frozen=True)
class ModelSummary:
    """One search result.

    Attributes:
        id: ``org/name``.
        task: the pipeline tag (``text-classification``), or None.
        library: ``transformers``, ``peft``, ... or None.
        downloads: downloads over the last 30 days, as the Hub counts them.
        likes: likes.
        last_modified: last commit time, or None when the Hub did not say.
        gated: False, or the gating mode (``"auto"`` / ``"manual"``; True when the Hub only says it is gated).
        tags: the repo's tags.
    """

    id: str
    task: str | None = None
    library: str | None = None
    downloads: int = 0
    likes: int = 0
    last_modified: datetime | None = None
    gated: bool | str = False
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SearchPage:
    """One page of results and the cursor of the next page (None on the last page)."""

    results: list[ModelSummary]
    next_cursor: str | None = None


def parse_datetime(value: Any) -> datetime | None:
    """An ISO 8601 timestamp from the Hub (``2024-01-02T03:04:05.000Z``) as an aware datetime, or None."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _gated(value: Any) -> bool | str:
    if value in (None, False, "false", "False", ""):
        return False
    if value is True or value in ("true", "True"):
        return True
    return str(value)


def summary_from_api(item: dict[str, Any]) -> ModelSummary:
    """A :class:`ModelSummary` from one item of the ``/api/models`` answer."""
    return ModelSummary(
        id=str(item.get("id") or item.get("modelId") or ""),
        task=item.get("pipeline_tag") or None,
        library=item.get("library_name") or None,
        downloads=int(item.get("downloads") or 0),
        likes=int(item.get("likes") or 0),
        last_modified=parse_datetime(item.get("lastModified") or item.get("last_modified")),
        gated=_gated(item.get("gated")),
        tags=[str(t) for t in (item.get("tags") or [])],
    )


def _next_cursor(response: Any, settings: Settings) -> str | None:
    link = response.links.get("next", {}).get("url")
    if not link:
        return None
    absolute = urljoin(f"{settings.endpoint}/api/models", link)
    return urlsplit(absolute).query or None


def search_models(
    query: str | None = None,
    *,
    task: str | None = None,
    library: str | None = None,
    author: str | None = None,
    sort: str = "downloads",
    limit: int = 20,
    cursor: str | None = None,
    settings: Settings | None = None,
) -> SearchPage:
    """Search models on the Hub; one page per call.

    Args:
        query: free text matched against model ids.
        task: pipeline tag filter (``text-classification``).
        library: library filter (``transformers``, ``peft``, ...).
        author: user or organisation.
        sort: ``downloads``, ``likes``, ``trending`` or ``last_modified`` (descending).
        limit: results per page (1..1000).
        cursor: ``next_cursor`` of an earlier page; when given, the query, filters, sort and limit are the
            ones of that earlier call (they are inside the cursor) and the other arguments are ignored.
        settings: endpoint and token; read from the environment when None.

    Returns:
        A :class:`SearchPage`; ``next_cursor`` is None on the last page.

    Raises:
        UsageError: unknown sort key or a limit out of range.
        HubUnreachableError: HF_HUB_OFFLINE is set or the endpoint does not answer.
        UnsupportedByMirrorError: the endpoint does not serve ``/api/models``.
        RateLimitedError, AuthError, HubError: other failures of the Hub.
    """
    s = resolve_settings(settings)
    if sort not in SORT_KEYS:
        raise UsageError(f"Unknown sort key '{sort}': use one of {', '.join(SORT_KEYS)}.")
    if not 1 <= int(limit) <= MAX_LIMIT:
        raise UsageError(f"--limit must be between 1 and {MAX_LIMIT}, not {limit}.")
    ensure_online(s, what="search")
    url = f"{s.endpoint}/api/models"
    params: Any
    if cursor:
        url = f"{url}?{cursor.lstrip('?')}"
        params = None
    else:
        params = [("sort", SORT_KEYS[sort]), ("direction", "-1"), ("limit", str(int(limit)))]
        if query:
            params.append(("search", query))
        if task:
            params.append(("pipeline_tag", task))
        if library:
            params.append(("filter", library))
        if author:
            params.append(("author", author))
        params.extend(("expand", prop) for prop in EXPAND)
    response = http_get(url, settings=s, params=params, route="search")
    data = json_body(response, settings=s, route="search")
    if not isinstance(data, list):
        raise _unsupported(s, "search")
    results = [summary_from_api(item) for item in data if isinstance(item, dict)]
    return SearchPage(results=results, next_cursor=_next_cursor(response, s))
