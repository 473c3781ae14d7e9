"""The one retry policy (hubmgr.hub.client.RETRY): which answers are tried again and how long hubmgr waits."""

import email.utils
import time

from hubmgr.hub.client import RetryPolicy, retry_after_asked


def test_statuses_backoff_and_rate_limit_waits():
    policy = RetryPolicy(max_retry_after=30.0)
    assert all(policy.retries(s) for s in (429, 500, 502, 503, 504))
    assert not any(policy.retries(s) for s in (400, 401, 403, 404, 410, 416))
    assert [policy.backoff(n) for n in (1, 2, 3, 4, 5, 6, 7)] == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert policy.wait(503, {}, 2) == (0.5, "HTTP 503")
    assert policy.wait(429, {}, 1) == (1.0, "HTTP 429 (rate limited)")
    assert policy.wait(429, {"Retry-After": "2"}, 1) == (2.0, "HTTP 429 (rate limited), Retry-After 2 s")
    assert policy.rate_limit_wait({"Retry-After": "3600"}) == (
        30.0,
        "HTTP 429 (rate limited), Retry-After 3600 s, capped at 30 s",
    )


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after_asked({"Retry-After": " 5 "}) == 5.0
    assert retry_after_asked({"Retry-After": "-3"}) == 0.0
    assert retry_after_asked({}) is None and retry_after_asked(None) is None
    assert retry_after_asked({"Retry-After": "soon"}) is None
    later = email.utils.formatdate(time.time() + 100, usegmt=True)
    assert 90 < retry_after_asked({"Retry-After": later}) <= 100


def test_the_env_caps_the_rate_limit_wait(monkeypatch):
    monkeypatch.setenv("HUBMGR_MAX_RETRY_AFTER", "0.5")
    assert RetryPolicy().max_retry_after == 0.5
    monkeypatch.setenv("HUBMGR_MAX_RETRY_AFTER", "nonsense")
    assert RetryPolicy().max_retry_after == 30.0
