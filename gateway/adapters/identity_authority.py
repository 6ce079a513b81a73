"""HTTP adapter for the identity authority (POST /v1/identity/verify).

Protocol: the authority answers every ruling, including NOT_FOUND, as HTTP 200
with a JSON body ``{"result", "reference", "similarity", "detail"}``.  Any
other status means no ruling was made, so it maps to UNAVAILABLE; an HTTP 404
therefore means a wrong endpoint, never an unknown document.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
from typing import Any, NamedTuple

import httpx

from gateway.core.authority import AuthorityAnswer, AuthorityResult

log = logging.getLogger(__name__)

VERIFY_PATH = "/v1/identity/verify"
_MAX_DETAIL = 200
# Only failures where the authority certainly did not rule are retried: the check is a
# read, but a slow answer (read timeout) is not retried because it would only burn the budget.
_RETRYABLE_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)
_RETRYABLE_STATUS = frozenset({503})


class _Attempt(NamedTuple):
    """The outcome of one HTTP exchange: an answer and whether trying again may help."""

    answer: AuthorityAnswer
    retryable: bool = False


class HttpIdentityAuthority:
    """IdentityAuthority over HTTP/1.1 with one pooled keep-alive client."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        timeout_s: float = 2.0,
        retries: int = 1,
        *,
        backoff_s: float = 0.05,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._timeout_s = timeout_s
        self._retries = max(0, retries)
        self._backoff_s = backoff_s
        # trust_env=False: identity data must never leave through an ambient HTTP(S)_PROXY.
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            # The asyncio deadline in check() is the real bound; httpx's read timeout is only a
            # backstop, while a short connect timeout leaves budget to retry a dropped SYN.
            timeout=httpx.Timeout(timeout_s + 1.0, connect=timeout_s / 2),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16, keepalive_expiry=30.0),
            trust_env=False,
            transport=transport,
        )

    async def __aenter__(self) -> HttpIdentityAuthority:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._client.aclose()

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
        try:
            response = await self._client.post(VERIFY_PATH, json=payload)
        except httpx.TimeoutException as exc:
            retry = isinstance(exc, httpx.ConnectTimeout)
            return _Attempt(_failure("authority timed out", exc), retry)
        except _RETRYABLE_ERRORS as exc:
            return _Attempt(_failure("authority unreachable", exc), True)
        except httpx.HTTPError as exc:
            return _Attempt(_failure("authority transport error", exc))
        return _Attempt(_answer_from(response), response.status_code in _RETRYABLE_STATUS)

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


def _answer_from(response: httpx.Response) -> AuthorityAnswer:
    """Map one HTTP response to an answer."""
    status = response.status_code
    if status == 200:
        return _parse_ruling(response)
    if status >= 500:
        return AuthorityAnswer.unavailable(f"authority answered HTTP {status}")
    if status in (401, 403):
        return AuthorityAnswer.unavailable(f"authority rejected the credentials (HTTP {status})")
    reason = _error_detail(response)
    return AuthorityAnswer.unavailable(f"authority rejected the request (HTTP {status}){reason}")


def _parse_ruling(response: httpx.Response) -> AuthorityAnswer:
    """Read a 200 body; anything that does not fit the protocol is UNAVAILABLE."""
    try:
        body = response.json()
        result = AuthorityResult(body["result"])
        reference, detail = body.get("reference", ""), body.get("detail", "")
        if not isinstance(reference, str) or not isinstance(detail, str):
            raise ValueError("reference and detail must be strings")
        return AuthorityAnswer(result, reference, _similarity(body.get("similarity")), detail[:_MAX_DETAIL])
    except (ValueError, KeyError, TypeError) as exc:
        return AuthorityAnswer.unavailable(f"authority answer was malformed ({type(exc).__name__})")


def _similarity(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("similarity must be a number")
    return float(value)


def _error_detail(response: httpx.Response) -> str:
    """The authority's own reason for a 4xx, if it gave one."""
    try:
        detail = response.json().get("detail")
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
