"""Shared Hub plumbing: an ``HfApi`` built from our settings, plain HTTP helpers, the one retry policy, and
one place that turns huggingface_hub / httpx errors into :mod:`hubmgr.errors`.

:data:`RETRY` (a :class:`RetryPolicy`) decides, for every request hubmgr makes to the Hub, which answers are
tried again and how long to wait first: the API calls here (:func:`http_get`, :func:`call_with_retries`) and
the listing, HEAD and file requests of :mod:`hubmgr.hub.download`, which announces each wait as a
``DownloadRetry`` event. huggingface_hub's ``http_backoff`` is not used for this: it neither caps a 429's
``Retry-After`` nor reads an HTTP date in it, and it cannot report a retry or be cancelled while it waits.

Every function in ``hubmgr.hub`` that touches the network goes through :func:`hub_errors` (or
:func:`raise_for_response` for requests it makes itself), so a user sees one sentence that says what to
do, never a traceback. The token travels only in the ``Authorization`` header and is never part of a
message.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeVar
from urllib.parse import quote, urlsplit

from hubmgr.config import Settings, get_settings
from hubmgr.errors import (
    AuthError,
    EntryNotFoundError,
    GatedRepoError,
    HubError,
    HubmgrError,
    HubUnreachableError,
    RateLimitedError,
    RepoNotFoundError,
    RevisionNotFoundError,
    UnsupportedByMirrorError,
)

if TYPE_CHECKING:  # pragma: no cover
    import httpx2
    from huggingface_hub import HfApi

T = TypeVar("T")

#: Seconds to wait for the Hub's API to answer (connect and each read).
API_TIMEOUT = 20.0

#: Human names of the API routes, for "does not serve the ... API" messages.
ROUTE_NAMES = {
    "search": "search",
    "model_info": "model info",
    "tree": "file listing",
}


LOGIN_HINT = "set HF_TOKEN or run `hf auth login`"


def env_seconds(name: str, default: float) -> float:
    """A positive number of seconds from the environment (tests and slow links tune the waits), else ``default``."""
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


@dataclass(frozen=True)
class RetryPolicy:
    """When a request to the Hub is tried again, and how long hubmgr waits before it.

    * a 5xx in :attr:`statuses` (and, for downloads, a dropped or stalled connection) waits
      :meth:`backoff`: ``backoff_base`` doubled each try, capped at ``backoff_max``;
    * a 429 waits its ``Retry-After`` (seconds or an HTTP date; 1 s when absent), capped at
      ``max_retry_after`` (``HUBMGR_MAX_RETRY_AFTER``, default 30 s);
    * a download gives up after ``max_tries`` tries that made no progress, or ``max_rate_limited`` 429s;
      an interactive API call (search, info, the fit estimate's headers) after ``api_tries`` tries in all,
      so a failing Hub is reported within seconds.
    """

    max_tries: int = 6
    max_rate_limited: int = 5
    api_tries: int = 3
    backoff_base: float = 0.25
    backoff_max: float = 8.0
    max_retry_after: float = field(default_factory=lambda: env_seconds("HUBMGR_MAX_RETRY_AFTER", 30.0))
    statuses: frozenset[int] = frozenset({500, 502, 503, 504})

    def retries(self, status: int) -> bool:
        """Whether an answer with this status is worth another try (429 or a 5xx in :attr:`statuses`)."""
        return status == 429 or status in self.statuses

    def backoff(self, tries: int) -> float:
        """Seconds to wait after ``tries`` failed tries (1, 2, ...) that were not rate limits."""
        return min(self.backoff_base * (2.0 ** max(tries - 1, 0)), self.backoff_max)

    def rate_limit_wait(self, headers: Any) -> tuple[float, str]:
        """``(seconds to wait, the reason to show)`` for a 429: its ``Retry-After``, capped."""
        asked = retry_after_asked(headers)
        if asked is None:
            return 1.0, "HTTP 429 (rate limited)"
        if asked > self.max_retry_after:
            return self.max_retry_after, (
                f"HTTP 429 (rate limited), Retry-After {asked:g} s, capped at {self.max_retry_after:g} s"
            )
        return asked, f"HTTP 429 (rate limited), Retry-After {asked:g} s"

    def wait(self, status: int, headers: Any, tries: int) -> tuple[float, str]:
        """``(seconds to wait, the reason to show)`` before trying again after an answer that :meth:`retries`."""
        if status == 429:
            return self.rate_limit_wait(headers)
        return self.backoff(tries), f"HTTP {status}"


def retry_after_asked(headers: Any) -> float | None:
    """The wait a ``Retry-After`` header asks for (seconds or an HTTP date), None when absent or unreadable."""
    value = ((headers.get("Retry-After") if headers is not None else None) or "").strip()
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(when.timestamp() - time.time(), 0.0)
    except (TypeError, ValueError, OverflowError):
        return None


#: The retry policy of every request hubmgr makes to the Hub (tests replace it with shorter waits).
RETRY = RetryPolicy()


def resolve_settings(settings: Settings | None) -> Settings:
    """``settings`` or the settings read from the environment now."""
    return settings if settings is not None else get_settings()


def get_api(settings: Settings | None = None) -> "HfApi":
    """An ``HfApi`` bound to ``settings.endpoint`` and ``settings.token``.

    Args:
        settings: where to talk to; read from the environment when None.

    Returns:
        A ``huggingface_hub.HfApi``. With no token in the settings it sends none (``token=False``), so the
        answer never depends on state huggingface_hub would look up behind our back.
    """
    from huggingface_hub import HfApi

    s = resolve_settings(settings)
    return HfApi(endpoint=s.endpoint, token=s.token or False, library_name="hubmgr")


def auth_headers(settings: Settings, *, token: bool = True) -> dict[str, str]:
    """Headers for a request we make ourselves: user agent and, when there is a token (and ``token``),
    Authorization. Pass ``token=False`` for a URL off the endpoint's host."""
    from huggingface_hub.utils import build_hf_headers

    headers: dict[str, str] = build_hf_headers(
        token=(settings.token or False) if token else False, library_name="hubmgr"
    )
    return headers


def ensure_online(settings: Settings, *, what: str = "this") -> None:
    """Raise :class:`HubUnreachableError` when ``HF_HUB_OFFLINE`` is set.

    Args:
        settings: the settings to check.
        what: what needs the Hub, for the message ("search", "model info", ...).

    Raises:
        HubUnreachableError: offline mode is on.
    """
    if settings.offline:
        raise HubUnreachableError(f"HF_HUB_OFFLINE is set: {what} needs the Hub (unset HF_HUB_OFFLINE to go online).")


def resolve_url(settings: Settings, repo_id: str, filename: str, revision: str | None = None) -> str:
    """The ``/{repo}/resolve/{revision}/{path}`` URL of one file of a model repo."""
    rev = quote(revision or "main", safe="")
    return f"{settings.endpoint}/{repo_id}/resolve/{rev}/{quote(filename, safe='/')}"


def http_get(
    url: str,
    *,
    settings: Settings,
    params: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = API_TIMEOUT,
    repo_id: str | None = None,
    revision: str | None = None,
    filename: str | None = None,
    route: str | None = None,
    tries: int | None = None,
) -> "httpx2.Response":
    """GET ``url`` with our auth headers through huggingface_hub's shared HTTP client.

    Args:
        url: the full URL.
        settings: endpoint and token.
        params: query parameters.
        headers: extra headers (merged over the auth headers).
        timeout: seconds.
        repo_id, revision, filename, route: context for the error message.
        tries: how many tries in all, after a 429 or a 5xx (waits as :data:`RETRY` says; default its
            ``api_tries``). Connection failures are not retried: an unreachable Hub is reported at once.

    Returns:
        The response, status 2xx (the body is read).

    Raises:
        HubmgrError: any failure, mapped by :func:`raise_for_response` / :func:`translate_error`.
    """
    from huggingface_hub.utils import get_session

    ensure_online(settings, what=ROUTE_NAMES.get(route or "", route or "this"))
    all_headers = {**auth_headers(settings), **(headers or {})}
    policy = RETRY
    tries = tries or policy.api_tries
    for attempt in range(1, tries + 1):
        with hub_errors(settings=settings, repo_id=repo_id, revision=revision, filename=filename, route=route):
            response: httpx2.Response = get_session().get(url, params=params, headers=all_headers, timeout=timeout)
        if not policy.retries(response.status_code) or attempt == tries:
            break
        time.sleep(policy.wait(response.status_code, response.headers, attempt)[0])
    raise_for_response(response, settings=settings, repo_id=repo_id, revision=revision, filename=filename, route=route)
    return response


def call_with_retries(fn: Callable[[], T], *, tries: int | None = None) -> T:
    """Call ``fn`` (a huggingface_hub API call) again after a 429 or 5xx answer, waiting as :data:`RETRY` says
    (``tries`` in all, default its ``api_tries``).

    Other failures, and the last failed try, propagate unchanged (wrap the call in :func:`hub_errors`).
    """
    from huggingface_hub.errors import HfHubHTTPError

    policy = RETRY
    tries = tries or policy.api_tries
    for attempt in range(1, tries + 1):
        try:
            return fn()
        except HfHubHTTPError as exc:
            response = getattr(exc, "response", None)
            if response is None or not policy.retries(response.status_code) or attempt == tries:
                raise
            time.sleep(policy.wait(response.status_code, response.headers, attempt)[0])
    raise AssertionError("unreachable")  # pragma: no cover


def json_body(response: "httpx2.Response", *, settings: Settings, route: str | None = None) -> Any:
    """The JSON body of an API answer.

    Raises:
        UnsupportedByMirrorError: the answer is not JSON (an HTML page from a mirror, say).
    """
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise _unsupported(settings, route) from exc


def _unsupported(settings: Settings, route: str | None) -> UnsupportedByMirrorError:
    name = ROUTE_NAMES.get(route or "", route or "")
    api = f"the {name} API" if name else "this API route"
    return UnsupportedByMirrorError(f"{settings.endpoint} does not serve {api} (mirrors often serve files only).")


def _is_api_url(url: str | None) -> bool:
    if not url:
        return False
    return urlsplit(url).path.startswith("/api/")


def _route_of(url: str | None) -> str | None:
    if not url:
        return None
    path = urlsplit(url).path
    if path.startswith("/api/models") and path.rstrip("/") == "/api/models":
        return "search"
    if "/tree/" in path:
        return "tree"
    if path.startswith("/api/models/"):
        return "model_info"
    return None


def _repo_label(repo_id: str | None) -> str:
    return f"'{repo_id}'" if repo_id else "the repository"


def _gated_error(settings: Settings, repo_id: str | None) -> GatedRepoError:
    page = f"{settings.endpoint}/{repo_id}" if repo_id else "the model page"
    if settings.token:
        msg = (
            f"{_repo_label(repo_id)} is gated and your token has not been granted access: "
            f"accept the conditions on {page} (logged in as the token's owner), then try again."
        )
    else:
        msg = f"{_repo_label(repo_id)} is gated: accept the conditions on {page}, then {LOGIN_HINT}."
    return GatedRepoError(msg)


def error_for_status(
    status: int,
    headers: Any,
    *,
    settings: Settings,
    url: str | None = None,
    repo_id: str | None = None,
    revision: str | None = None,
    filename: str | None = None,
    route: str | None = None,
) -> HubmgrError | None:
    """The hubmgr error for an HTTP answer, or None when ``status`` is a success.

    Reads ``X-Error-Code`` (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo) the way the Hub sends it.
    A 404 without that header on an ``/api/`` route means the endpoint does not have the route (a mirror).

    Args:
        status: the HTTP status.
        headers: the response headers (a mapping, case-insensitive when it comes from httpx).
        settings: for the endpoint and whether a token was sent.
        url: the request URL (to tell API routes from file routes).
        repo_id, revision, filename, route: context for the message.

    Returns:
        An exception to raise, or None.
    """
    if status < 400:
        return None
    get = headers.get if headers is not None else (lambda _k, _d=None: None)
    code = get("X-Error-Code") or get("x-error-code")
    message = get("X-Error-Message") or get("x-error-message") or ""
    route = route or _route_of(url)
    rev = revision or "main"
    where = f" on {settings.endpoint}"
    if code == "GatedRepo":
        return _gated_error(settings, repo_id)
    if code == "RevisionNotFound":
        return RevisionNotFoundError(f"Revision '{rev}' does not exist in {_repo_label(repo_id)}{where}.")
    if code == "EntryNotFound":
        name = f"'{filename}'" if filename else "The file"
        return EntryNotFoundError(f"{name} is not in {_repo_label(repo_id)} at revision '{rev}'.")
    if code == "RepoNotFound":
        hint = "" if settings.token else f" If it is private, {LOGIN_HINT}."
        return RepoNotFoundError(f"Repository {_repo_label(repo_id)} was not found{where}.{hint}")
    if status == 401 and "invalid credentials" in message.lower():
        return AuthError(f"The Hub at {settings.endpoint} rejected your token: {LOGIN_HINT} with a valid token.")
    if status in (401, 403):
        if settings.token:
            return AuthError(
                f"Access to {_repo_label(repo_id)} was refused{where} (HTTP {status}): your token lacks the permission."
            )
        return AuthError(f"Access to {_repo_label(repo_id)} was refused{where} (HTTP {status}): {LOGIN_HINT}.")
    if status == 404:
        if _is_api_url(url) or route in ROUTE_NAMES:
            return _unsupported(settings, route)
        if filename:
            return EntryNotFoundError(f"'{filename}' is not in {_repo_label(repo_id)} at revision '{rev}'.")
        return RepoNotFoundError(f"Repository {_repo_label(repo_id)} was not found{where}.")
    if status == 429:
        retry = get("Retry-After")
        after = f" (retry after {retry} s)" if retry else ""
        return RateLimitedError(f"The Hub at {settings.endpoint} is rate-limiting requests{after}: wait and try again.")
    if status == 416:
        return HubError(f"The Hub at {settings.endpoint} refused a byte range for '{filename or url}' (HTTP 416).")
    what = (
        f" for '{filename}' of {_repo_label(repo_id)}"
        if filename
        else (f" for {_repo_label(repo_id)}" if repo_id else "")
    )
    if status >= 500:
        return HubError(
            f"The Hub at {settings.endpoint} answered with a server error (HTTP {status}){what}; try again later."
        )
    return HubError(f"The Hub at {settings.endpoint} answered HTTP {status}{what}{': ' + message if message else ''}.")


def raise_for_response(
    response: "httpx2.Response",
    *,
    settings: Settings,
    repo_id: str | None = None,
    revision: str | None = None,
    filename: str | None = None,
    route: str | None = None,
) -> None:
    """Raise the hubmgr error for a failed response (no-op on 1xx-3xx).

    Raises:
        HubmgrError: the mapped error (see :func:`error_for_status`).
    """
    if response.status_code < 400:
        return
    try:
        url = str(response.request.url)
    except RuntimeError:  # response built without a request
        url = None
    err = error_for_status(
        response.status_code,
        response.headers,
        settings=settings,
        url=url,
        repo_id=repo_id,
        revision=revision,
        filename=filename,
        route=route,
    )
    if err is not None:
        raise err


def unreachable_error(settings: Settings, *, detail: str | None = None) -> HubUnreachableError:
    """The one-line "unreachable" error (mentions HF_HUB_OFFLINE when that is the cause)."""
    if settings.offline:
        return HubUnreachableError("HF_HUB_OFFLINE is set: the Hub is not contacted (unset it to go online).")
    return HubUnreachableError(f"The Hub at {settings.endpoint} is unreachable{f' ({detail})' if detail else ''}.")


def translate_error(
    exc: BaseException,
    *,
    settings: Settings,
    repo_id: str | None = None,
    revision: str | None = None,
    filename: str | None = None,
    route: str | None = None,
) -> HubmgrError | None:
    """Map an exception raised by huggingface_hub or httpx to a hubmgr error.

    Args:
        exc: the exception.
        settings: endpoint and token, for the message.
        repo_id, revision, filename, route: context for the message.

    Returns:
        The hubmgr error, or None when ``exc`` is not a Hub/network failure (a bug: let it propagate).
    """
    import httpcore2
    import httpx2
    from huggingface_hub import errors as hf_errors

    if isinstance(exc, HubmgrError):
        return exc
    if isinstance(exc, hf_errors.OfflineModeIsEnabled):
        return HubUnreachableError("HF_HUB_OFFLINE is set: the Hub is not contacted (unset it to go online).")
    if isinstance(exc, hf_errors.HfHubHTTPError):
        response = getattr(exc, "response", None)
        if response is not None:
            err = None
            with contextlib.suppress(Exception):
                url = str(response.request.url) if response.request is not None else None
                err = error_for_status(
                    response.status_code,
                    response.headers,
                    url=url,
                    settings=settings,
                    repo_id=repo_id,
                    revision=revision,
                    filename=filename,
                    route=route,
                )
            if err is not None:
                return err
        if isinstance(exc, hf_errors.GatedRepoError):
            return _gated_error(settings, repo_id)
        if isinstance(exc, hf_errors.RepositoryNotFoundError):
            return RepoNotFoundError(f"Repository {_repo_label(repo_id)} was not found on {settings.endpoint}.")
        if isinstance(exc, hf_errors.RevisionNotFoundError):
            return RevisionNotFoundError(f"Revision '{revision or 'main'}' does not exist in {_repo_label(repo_id)}.")
        if isinstance(exc, hf_errors.RemoteEntryNotFoundError):
            return EntryNotFoundError(
                f"'{filename}' is not in {_repo_label(repo_id)} at revision '{revision or 'main'}'."
            )
        return HubError(f"The Hub at {settings.endpoint} answered with an error: {str(exc).strip().splitlines()[0]}")
    if isinstance(exc, hf_errors.LocalEntryNotFoundError):
        return unreachable_error(settings)
    if isinstance(exc, (httpx2.TimeoutException, httpcore2.TimeoutException)):
        return unreachable_error(settings, detail="timed out")
    if isinstance(exc, (httpx2.TransportError, httpcore2.NetworkError, ConnectionError)):
        return unreachable_error(settings)
    if isinstance(exc, httpx2.HTTPStatusError):
        return error_for_status(
            exc.response.status_code,
            exc.response.headers,
            url=str(exc.request.url),
            settings=settings,
            repo_id=repo_id,
            revision=revision,
            filename=filename,
            route=route,
        )
    if isinstance(exc, json.JSONDecodeError):
        return _unsupported(settings, route)
    return None


@contextlib.contextmanager
def hub_errors(
    *,
    settings: Settings,
    repo_id: str | None = None,
    revision: str | None = None,
    filename: str | None = None,
    route: str | None = None,
) -> Iterator[None]:
    """Context manager: re-raise Hub and network failures inside it as hubmgr errors.

    Example::

        with hub_errors(settings=s, repo_id="org/name", route="model_info"):
            info = get_api(s).model_info("org/name")

    Raises:
        HubmgrError: the mapped error; anything that is not a Hub failure propagates unchanged.
    """
    try:
        yield
    except HubmgrError:
        raise
    except Exception as exc:
        err = translate_error(
            exc, settings=settings, repo_id=repo_id, revision=revision, filename=filename, route=route
        )
        if err is None:
            raise
        raise err from exc
