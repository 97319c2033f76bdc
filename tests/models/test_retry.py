"""The one retry policy shared by the model client and the remote tool client."""

from __future__ import annotations

import email.utils
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from dxgraph.models.retry import RETRY_STATUSES, RetriesExhausted, Retry, RetryPolicy, retry_after_seconds


class Sleeps(list):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def failing(times: int, reason: str = "HTTP 503", retry_after: float | None = None):
    """An attempt that asks for a retry ``times`` times, then returns its attempt number."""
    seen: list[int] = []

    async def attempt(number: int) -> int:
        seen.append(number)
        if len(seen) <= times:
            raise Retry(reason, retry_after)
        return number

    attempt.seen = seen
    return attempt


async def test_backoff_doubles_from_base_up_to_the_cap():
    sleeps = Sleeps()
    attempt = failing(5)
    policy = RetryPolicy(max_retries=5, base_s=0.5, max_s=3.0, jitter=False, sleep=sleeps)
    assert await policy.call(attempt) == 6
    assert attempt.seen == [1, 2, 3, 4, 5, 6] and sleeps == [0.5, 1.0, 2.0, 3.0, 3.0]


async def test_jitter_draws_below_each_cap():
    sleeps = Sleeps()
    await RetryPolicy(max_retries=6, base_s=1.0, max_s=5.0, sleep=sleeps).call(failing(6))
    assert len(sleeps) == 6 and all(0 <= d <= cap for d, cap in zip(sleeps, [1, 2, 4, 5, 5, 5]))
    assert len(set(sleeps)) == 6


async def test_retry_after_replaces_the_backoff_and_is_capped():
    sleeps = Sleeps()
    await RetryPolicy(max_retries=1, max_s=20.0, sleep=sleeps).call(failing(1, retry_after=7.0))
    assert sleeps == [7.0]
    sleeps.clear()
    await RetryPolicy(max_retries=1, max_s=20.0, sleep=sleeps).call(failing(1, retry_after=86400.0))
    assert sleeps == [20.0]


async def test_attempts_are_max_retries_plus_one_and_the_last_reason_is_kept():
    sleeps = Sleeps()
    attempt = failing(99, reason="ConnectError")
    with pytest.raises(RetriesExhausted) as info:
        await RetryPolicy(max_retries=2, sleep=sleeps).call(attempt)
    assert (info.value.attempts, info.value.reason) == (3, "ConnectError") and attempt.seen == [1, 2, 3]
    assert len(sleeps) == 2  # no wait after the last attempt
    with pytest.raises(RetriesExhausted) as info:
        await RetryPolicy(max_retries=0, sleep=sleeps).call(failing(99))
    assert info.value.attempts == 1 and len(sleeps) == 2


async def test_any_other_exception_stops_at_once():
    sleeps = Sleeps()
    seen = []

    async def attempt(number: int) -> None:
        seen.append(number)
        raise KeyError("not retryable")

    with pytest.raises(KeyError):
        await RetryPolicy(sleep=sleeps).call(attempt)
    assert seen == [1] and sleeps == []


def test_retry_after_header_in_seconds_or_as_a_date():
    def parse(value: str | None) -> float | None:
        return retry_after_seconds(httpx.Response(429, headers={"Retry-After": value} if value else {}))

    assert parse("12") == 12.0 and parse("1.5") == 1.5 and parse("-3") == 0.0
    assert parse(None) is None and parse("soon") is None
    later = email.utils.format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert 25 <= parse(later) <= 30
    assert parse("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date already past: go now


def test_what_is_retried():
    assert {408, 429, 500, 502, 503, 504} <= RETRY_STATUSES
    assert not {400, 401, 403, 404, 413, 422, 501} & RETRY_STATUSES
    response = httpx.Response(429, headers={"Retry-After": "4"})
    retry = Retry.from_response(response)
    assert (retry.reason, retry.retry_after) == ("HTTP 429", 4.0)
