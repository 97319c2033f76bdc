"""The one retry policy for calls over the network: model endpoints and remote tools.

A call is a function of the attempt number that either returns, raises ``Retry`` to ask for
another attempt, or raises anything else to stop at once. ``RetryPolicy.call`` runs it with
tenacity: at most ``max_retries + 1`` attempts, AWS "full jitter" exponential backoff between
them, and a server's ``Retry-After`` (seconds or an HTTP date) obeyed instead of the backoff,
both capped at ``max_s`` so a hostile or confused server cannot park a benchmark for hours.
When the attempts run out it raises ``RetriesExhausted`` with the count and the last reason,
and each client turns that into its own error (``ModelUnavailable``, ``ToolError``).

What is worth retrying is decided here too, so the model client and the tool client agree:
transport errors and timeouts (the caller raises ``Retry`` for them) and ``RETRY_STATUSES``.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx
import tenacity

__all__ = ["RETRY_STATUSES", "RetriesExhausted", "Retry", "RetryPolicy", "retry_after_seconds"]

# 408/409/429 and the 5xx that mean "busy or broken for now" (Cloudflare's 52x included);
# 501 and 505 say the request itself will never work, so they are not retried.
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504}) | frozenset(range(520, 530))

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date), if any."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Retry(Exception):
    """Raised by one attempt to ask for another.

    Args:
        reason: what went wrong, for the final error (``HTTP 503``, ``ConnectTimeout``).
        retry_after: the server's ``Retry-After`` in seconds, if it sent one.
    """

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after

    @classmethod
    def from_response(cls, response: httpx.Response) -> Retry:
        """``HTTP <status>``, with the response's ``Retry-After`` if any."""
        return cls(f"HTTP {response.status_code}", retry_after_seconds(response))


class RetriesExhausted(Exception):
    """Every attempt asked for another; the caller words the error for its own users."""

    def __init__(self, attempts: int, reason: str):
        super().__init__(f"no success after {attempts} attempts; last error: {reason}")
        self.attempts = attempts
        self.reason = reason


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry.

    Args:
        max_retries: retries after the first attempt (so ``max_retries + 1`` attempts).
        base_s: the first retry waits up to this long; each further retry doubles the cap.
        max_s: the cap on any single wait, ``Retry-After`` included.
        jitter: draw each wait uniformly below its cap (so clients that failed together do
            not retry together); False waits exactly the cap.
        sleep: the wait itself; tests pass a recorder instead of sleeping.
    """

    max_retries: int = 4
    base_s: float = 0.5
    max_s: float = 20.0
    jitter: bool = True
    sleep: Sleep = asyncio.sleep

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.base_s < 0 or self.max_s < 0:
            raise ValueError("max_retries, base_s and max_s must be >= 0")

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """Before the next attempt: the server's ``Retry-After`` if it sent one, else backoff."""
        failure = state.outcome.exception() if state.outcome is not None else None
        after = getattr(failure, "retry_after", None)
        if after is not None:
            return min(after, self.max_s)
        backoff = tenacity.wait_random_exponential if self.jitter else tenacity.wait_exponential
        return backoff(multiplier=self.base_s, max=self.max_s)(state)

    async def call(self, attempt: Callable[[int], Awaitable[T]]) -> T:
        """Run ``attempt(n)`` for n = 1, 2, ... until it returns or raises something but ``Retry``.

        Raises:
            RetriesExhausted: the last allowed attempt raised ``Retry`` too.
        """
        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(Retry),
            sleep=self.sleep,
            reraise=True,
        )
        try:
            async for trial in retrying:
                with trial:
                    return await attempt(trial.retry_state.attempt_number)
        except Retry as last:
            raise RetriesExhausted(self.max_retries + 1, last.reason) from None
        raise AssertionError("tenacity stopped without an outcome")  # unreachable: reraise=True
