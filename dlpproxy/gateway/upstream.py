"""The external provider behind the gateway: forward with the provider key the gateway holds.

Only a short list of request headers goes upstream (never the app's `Authorization` or
`x-api-key`); the provider's key is added here. `open` returns the provider's answer once its
headers are in, so the caller can still fall back to the local model on 429/5xx; `Answer.body`
then relays it, SSE passed event by event (placeholders restored when the prompt was redacted),
and a stream the provider cuts midway ends with the format's error event instead of half an
event. Closing the body (the client went away) closes the provider connection.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx

from dlpproxy.enforce.placeholders import PlaceholderMap
from dlpproxy.enforce.restore import SseRestorer, restore_json
from dlpproxy.gateway.config import ProviderConfig
from dlpproxy.gateway.formats import broken_stream_note

log = logging.getLogger("dlpproxy.gateway")
FORWARDED = ("content-type", "accept", "anthropic-version", "anthropic-beta", "openai-beta",
             "idempotency-key", "user-agent")  # fmt: skip
RETURNED = ("content-type", "cache-control", "retry-after", "x-request-id", "request-id",
            "openai-processing-ms", "anthropic-organization-id")  # fmt: skip
RETURNED_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-")
ANTHROPIC_VERSION = "2023-06-01"
MAX_ERROR_BODY = 64 * 1024


class ProviderDown(Exception):
    """The provider could not be reached or did not answer in time (nothing was relayed)."""

    def __init__(self, provider: str, reason: str, timed_out: bool = False):
        self.provider, self.reason, self.timed_out = provider, reason, timed_out
        super().__init__(f"provider {provider} {reason}")


@dataclass(slots=True)
class Answer:
    """The provider's answer, headers in; `body` relays it (bytes for JSON, events for SSE)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes | AsyncIterator[bytes]

    @property
    def retryable(self) -> bool:
        """429 and 5xx: over quota or down, where the local model may answer instead."""
        return self.status == 429 or self.status >= 500


class Upstream:
    """One provider: its base URL, its key (from the environment) and a pooled HTTP client."""

    def __init__(self, config: ProviderConfig, max_connections: int = 200) -> None:
        self.config = config
        timeout = httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s)
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=50)
        self.client = httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False)

    def url(self, target: str) -> str:
        """`/v1/chat/completions?x=1` -> base_url + `/chat/completions?x=1`."""
        rest = target[3:] if target.startswith("/v1/") else target
        return self.config.base_url + rest

    def headers(self, incoming: tuple[tuple[str, str], ...]) -> dict[str, str]:
        out = {k: v for k, v in incoming if k in FORWARDED}
        if self.config.name == "anthropic":
            out["x-api-key"] = self.config.api_key
            out.setdefault("anthropic-version", ANTHROPIC_VERSION)
        else:
            out["authorization"] = f"Bearer {self.config.api_key}"
        return out

    async def open(
        self, method: str, target: str, incoming: tuple[tuple[str, str], ...], body: bytes,
        route: str, pmap: PlaceholderMap | None, on_end: Callable[[str], None],
    ) -> Answer:  # fmt: skip
        """Send and wait for the headers and the whole body, or for an SSE stream's first event.

        ProviderDown: not reachable, timed out, or broken before the first byte could be relayed.
        For a relayed stream, `on_end(problem)` is called once it ends ("" when it was whole).
        """
        request = self.client.build_request(
            method, self.url(target), headers=self.headers(incoming), content=body
        )
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TimeoutException:
            raise ProviderDown(self.config.name, "did not answer in time", True) from None
        except httpx.HTTPError as exc:
            raise ProviderDown(self.config.name, f"is unreachable ({_describe(exc)})") from None
        headers = _returned(response.headers)
        if "text/event-stream" in response.headers.get("content-type", "") and response.is_success:
            relay = _Relay(response, _relay(response, route, pmap), on_end)
            try:
                await relay.prime()
            except _Broken as exc:
                await relay.discard()
                reason = f"broke off before its first event ({exc.detail})"
                raise ProviderDown(self.config.name, reason, exc.timed_out) from None
            return Answer(response.status_code, headers, relay)
        try:
            limit = None if response.is_success else MAX_ERROR_BODY
            raw = await _read(response, limit)
        except httpx.TimeoutException:
            raise ProviderDown(self.config.name, "stopped answering (timeout)", True) from None
        except httpx.HTTPError as exc:
            raise ProviderDown(self.config.name, f"broke off ({_describe(exc)})") from None
        finally:
            await response.aclose()
        return Answer(response.status_code, headers, restore_json(raw, pmap) if pmap else raw)

    async def aclose(self) -> None:
        await self.client.aclose()


async def _read(response: httpx.Response, limit: int | None) -> bytes:
    out = bytearray()
    async for chunk in response.aiter_bytes():
        out += chunk
        if limit is not None and len(out) >= limit:
            break
    return bytes(out)


class _Relay:
    """The relayed stream; closing it closes the provider's response, started or not."""

    def __init__(
        self, response: httpx.Response, events: AsyncIterator[bytes],
        on_end: Callable[[str], None],
    ) -> None:  # fmt: skip
        self.response, self.events, self.on_end = response, events, on_end
        self.problem = "the client went away before the end"
        self.broken = False
        self.first: bytes | None = None

    async def prime(self) -> None:
        """Wait for the first whole event (_Broken: the stream broke before it)."""
        try:
            self.first = await anext(self.events)
        except StopAsyncIteration:  # an empty stream: it ends at once
            self.problem, self.broken = "", True

    async def discard(self) -> None:
        """Close without relaying anything (the caller answers another way)."""
        self.on_end = _nothing
        await self.aclose()

    def __aiter__(self) -> _Relay:
        return self

    async def __anext__(self) -> bytes:
        if self.first is not None:
            first, self.first = self.first, None
            return first
        if self.broken:
            raise StopAsyncIteration
        try:
            return await anext(self.events)
        except StopAsyncIteration:
            self.problem = ""
            raise
        except _Broken as exc:
            self.problem, self.broken = str(exc), True
            return exc.note

    async def aclose(self) -> None:
        await self.events.aclose()  # type: ignore[attr-defined]
        await self.response.aclose()
        on_end, self.on_end = self.on_end, _nothing
        on_end(self.problem)


class _Broken(Exception):
    """A provider stream that broke off: why, and the error event that tells the client."""

    def __init__(self, exc: httpx.HTTPError, route: str):
        self.detail = _describe(exc)
        self.timed_out = isinstance(exc, httpx.TimeoutException)
        problem = f"the provider's stream broke off ({self.detail})"
        super().__init__(problem)
        self.note = broken_stream_note(
            route, f"dlpproxy gateway: {problem}; the answer is incomplete"
        )


def _nothing(problem: str) -> None:
    return None


async def _relay(
    response: httpx.Response, route: str, pmap: PlaceholderMap | None
) -> AsyncIterator[bytes]:
    """SSE bytes as whole events; a cut stream raises _Broken with the route's error event."""
    restorer = SseRestorer(pmap) if pmap else None
    pending = b""
    try:
        async for chunk in response.aiter_bytes():
            if restorer is not None:
                out = restorer.feed(chunk)
            else:
                pending += chunk
                cut = _events_end(pending)
                out, pending = pending[:cut], pending[cut:]
            if out:
                yield out
    except httpx.HTTPError as exc:
        broken = _Broken(exc, route)
        log.warning("%s on %s", broken, route)
        raise broken from None
    tail = restorer.flush() if restorer is not None else pending
    if tail:
        yield tail


def _events_end(buffer: bytes) -> int:
    """The length of the whole events at the start of `buffer` (0: none finished yet)."""
    lf, crlf = buffer.rfind(b"\n\n"), buffer.rfind(b"\r\n\r\n")
    return max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)


def _returned(headers: httpx.Headers) -> tuple[tuple[str, str], ...]:
    return tuple(
        (k, v) for k, v in headers.items() if k in RETURNED or k.startswith(RETURNED_PREFIXES)
    )


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
