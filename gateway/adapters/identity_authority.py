"""HTTP adapter for the identity authority (POST /v1/identity/verify).

Protocol: the authority answers every ruling, including NOT_FOUND, as HTTP 200
with a JSON body ``{"result", "reference", "similarity", "detail"}``.  Any
other status means no ruling was made, so it maps to UNAVAILABLE; an HTTP 404
therefore means a wrong endpoint, never an unknown document.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from gateway.adapters import http1
from gateway.core.authority import AuthorityAnswer, AuthorityResult

log = logging.getLogger(__name__)

VERIFY_PATH = "/v1/identity/verify"
_MAX_DETAIL = 200
# Every connection the pool may open is kept alive: opening and closing TCP connections per
# request under a burst costs more CPU than the calls themselves.
_POOL_SIZE = 64
_KEEPALIVE_S = 30.0
_RETRYABLE_STATUS = frozenset({503})


class _Attempt(NamedTuple):
    """The outcome of one HTTP exchange: an answer and whether trying again may help."""

    answer: AuthorityAnswer
    retryable: bool = False


class HttpIdentityAuthority:
    """IdentityAuthority over HTTP/1.1 with one pool of keep-alive connections (gateway.adapters.http1)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        timeout_s: float = 2.0,
        retries: int = 1,
        *,
        backoff_s: float = 0.05,
    ) -> None:
        self._timeout_s = timeout_s
        self._retries = max(0, retries)
        self._backoff_s = backoff_s
        # The endpoint is appended to the base URL's path (as in ".../v0" + VERIFY_PATH), never swapped
        # for it, so a base URL with a wrong path prefix reaches a wrong endpoint and answers 404.
        url = base_url.rstrip("/") + VERIFY_PATH
        parts = urlsplit(url)
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # The deadline in check() bounds every wait (a pooled connection, the answer), so the pool needs
        # no read timeout of its own; a short connect timeout leaves budget to retry a dropped SYN.
        self._pool = http1.Http1Pool(
            url, max_connections=_POOL_SIZE, keepalive_s=_KEEPALIVE_S, connect_timeout_s=timeout_s / 2,
            headers=(("Authorization", f"Bearer {api_key}"), ("Accept", "application/json"),
                     ("Content-Type", "application/json")))
        self._closed = False

    async def __aenter__(self) -> HttpIdentityAuthority:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections; later checks answer UNAVAILABLE."""
        self._closed = True
        await self._pool.aclose()

    async def check(
        self, document_type: str, number: str, name: str, photo: bytes | None = None
    ) -> AuthorityAnswer:
        """Ask the authority; every failure becomes an UNAVAILABLE answer, never an exception."""
        payload = {
            "document_type": document_type,
            "document_number": number,
            "name": name,
            "photo": base64.b64encode(photo).decode("ascii") if photo is not None else None,
        }
        try:
            # One deadline for all attempts, so the caller's worst case is timeout_s, not a multiple.
            async with asyncio.timeout(self._timeout_s):
                answer = await self._with_retries(payload)
        except TimeoutError:
            answer = AuthorityAnswer.unavailable(f"authority did not answer within {self._timeout_s:g} s")
        answer = _scrubbed(answer, number, name)
        self._log(answer)
        return answer

    async def _with_retries(self, payload: dict[str, Any]) -> AuthorityAnswer:
        for attempt in range(self._retries + 1):
            outcome = await self._attempt(payload)
            if not outcome.retryable or attempt == self._retries:
                break
            await asyncio.sleep(self._backoff_s * (attempt + 1))
        return outcome.answer

    async def _attempt(self, payload: dict[str, Any]) -> _Attempt:
        if self._closed:
            # Checked before every attempt, so a retry after aclose() never opens a new connection.
            return _Attempt(AuthorityAnswer.unavailable("authority client is closed"))
        # The deadline in check() cancels this coroutine, which no clause below catches.
        try:
            status, body = await self._pool.request("POST", self._target, json.dumps(payload).encode())
        except http1.ConnectTimedOut as exc:
            return _Attempt(_failure("authority timed out", exc), True)
        except http1.ReadTimedOut as exc:
            return _Attempt(_failure("authority timed out", exc))
        except (http1.ConnectFailed, http1.ConnectionDropped) as exc:
            # Nothing was answered: the connection was refused, or the server dropped it (a stale
            # keep-alive connection, or an answer cut short), so trying again may help.
            return _Attempt(_failure("authority unreachable", exc), True)
        except http1.HttpError as exc:
            return _Attempt(_failure("authority transport error", exc))
        return _Attempt(_answer_from(status, body), status in _RETRYABLE_STATUS)

    @staticmethod
    def _log(answer: AuthorityAnswer) -> None:
        # Only the reference and verdict: the number and name are personal data.
        if answer.result is AuthorityResult.UNAVAILABLE:
            log.warning(
                "identity authority unavailable reference=%s detail=%s",
                answer.reference or "-",
                answer.detail,
            )
        else:
            log.info(
                "identity authority answered result=%s reference=%s", answer.result.value, answer.reference
            )


def _failure(what: str, exc: Exception) -> AuthorityAnswer:
    # The exception's class names the failure; its message may quote the request.
    return AuthorityAnswer.unavailable(f"{what} ({type(exc).__name__})")


def _answer_from(status: int, body: bytes) -> AuthorityAnswer:
    """Map one HTTP response to an answer."""
    if status == 200:
        return _parse_ruling(body)
    if status >= 500:
        return AuthorityAnswer.unavailable(f"authority answered HTTP {status}")
    if status in (401, 403):
        return AuthorityAnswer.unavailable(f"authority rejected the credentials (HTTP {status})")
    reason = _error_detail(body)
    return AuthorityAnswer.unavailable(f"authority rejected the request (HTTP {status}){reason}")


def _parse_ruling(body: bytes) -> AuthorityAnswer:
    """Read a 200 body; anything that does not fit the protocol is UNAVAILABLE."""
    try:
        # json.loads reads bytes in UTF-8, -16 or -32, whatever the Content-Type claims.
        ruling = json.loads(body)
        result = AuthorityResult(ruling["result"])
        reference, detail = ruling.get("reference", ""), ruling.get("detail", "")
        if not isinstance(reference, str) or not isinstance(detail, str):
            raise ValueError("reference and detail must be strings")
        return AuthorityAnswer(result, reference, _similarity(ruling.get("similarity")), detail[:_MAX_DETAIL])
    except (ValueError, KeyError, TypeError) as exc:
        return AuthorityAnswer.unavailable(f"authority answer was malformed ({type(exc).__name__})")


def _similarity(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("similarity must be a number")
    return float(value)


def _error_detail(body: bytes) -> str:
    """The authority's own reason for a 4xx, if it gave one."""
    try:
        detail = json.loads(body).get("detail")
    except (ValueError, AttributeError):
        return ""
    return f": {detail[:_MAX_DETAIL]}" if isinstance(detail, str) and detail else ""


def _scrubbed(answer: AuthorityAnswer, *secrets: str) -> AuthorityAnswer:
    """Mask the number and name should the authority echo them into its detail."""
    detail = answer.detail
    for secret in secrets:
        if secret.strip():
            detail = detail.replace(secret, "***")
    if detail == answer.detail:
        return answer
    return AuthorityAnswer(answer.result, answer.reference, answer.similarity, detail)
