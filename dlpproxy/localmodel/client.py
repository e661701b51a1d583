"""The client for the company's own OpenAI-compatible model servers (vLLM, Ollama, llama.cpp).

Every failure is a `LocalModelError` whose `kind` says what went wrong, before the first chunk
of a stream and in the middle of one alike, so a caller can fail closed in its own format.
Each model has one pooled `httpx.AsyncClient` on our own transport (`transport.py`: HTTP/1.1 on
asyncio streams, `http1.py` framing, a fraction of the CPU of httpx's default one per streamed
answer); chat calls hand their request to that transport directly (`_open`). It
never reads proxy settings from the environment: the proxy must not send its own rerouted
prompts through a proxy. A health check is cached for `health_ttl_s`, and a circuit breaker is
fed by every call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from dlpproxy import __version__
from dlpproxy.errors import DlpError
from dlpproxy.localmodel.breaker import CircuitBreaker
from dlpproxy.localmodel.config import LocalModelConfig, LocalModelConfigError
from dlpproxy.localmodel.idle import IdleWatch
from dlpproxy.localmodel.sse import sse_data
from dlpproxy.localmodel.transport import LocalModelTransport

Kind = Literal["unavailable", "timeout", "bad_response", "http_error", "circuit_open"]
MAX_ANSWER_BYTES = 16 * 1024 * 1024  # a whole (not streamed) answer
HEALTH_TIMEOUT_S = 5.0  # on top of the connect timeout
USER_AGENT = f"dlpproxy/{__version__}"


class LocalModelError(DlpError):
    """A local model did not give a usable answer; `kind` says why, `status` the HTTP status."""

    def __init__(self, model: str, kind: Kind, detail: str, status: int | None = None):
        self.model, self.kind, self.detail, self.status = model, kind, detail, status
        super().__init__(f"{kind}: {detail}")


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    latency_ms: float
    detail: str
    checked_at: float  # time.time()


class LocalModel:
    """One local model server: chat (whole or streamed), models, embeddings, health."""

    def __init__(
        self, config: LocalModelConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self.breaker = CircuitBreaker(config.breaker_failures, config.breaker_reset_s)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._wire: httpx.AsyncBaseTransport | None = None  # the client's transport
        self._urls: dict[str, httpx.URL] = {}
        self._timeouts = httpx.Timeout(None, connect=config.connect_timeout_s).as_dict()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._health: Health | None = None
        self._health_until = 0.0  # time.monotonic()

    async def chat(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A whole chat completion (`stream` forced off, `model` set to the configured one)."""
        payload = self._payload(body, stream=False)
        async with self._call():
            doc = await self._json("POST", "chat/completions", payload, self.config.timeout_s)
            problem = _completion_problem(doc)
            if problem:
                raise self._error("bad_response", f"not a chat completion: {problem}")
            return doc

    async def chat_stream(self, body: Mapping[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """The chunks of a streamed chat completion, until `[DONE]`.

        The first chunk must come within first_token_timeout_s, each next one within
        idle_timeout_s of the one before. A stream that ends (with or without `[DONE]`) before
        a chunk with a finish_reason was cut short: bad_response.
        """
        payload = self._payload(body, stream=True)
        cfg = self.config
        self._admit()
        answered = False
        try:
            async with contextlib.AsyncExitStack() as stack:
                async with self._errors("waiting for the first chunk", cfg.first_token_timeout_s):
                    response = await self._open("POST", "chat/completions", payload,
                                                "text/event-stream")  # fmt: skip
                    stack.push_async_callback(response.aclose)
                    await self._raise_for_status(response)
                    kind = response.headers.get("content-type", "")
                    if not kind.startswith("text/event-stream"):
                        raise self._error("bad_response", f"expected an SSE stream, got {kind!r}")
                    chunks = self._chunks(response)
                    stack.push_async_callback(chunks.aclose)
                    chunk = await anext(chunks, None)
                self.breaker.success()
                answered = True
                idle = IdleWatch(cfg.idle_timeout_s)  # one timer for the stream, not one a chunk
                stack.callback(idle.close)
                while chunk is not None:
                    yield chunk
                    try:
                        chunk = await idle.next(chunks)
                    except (TimeoutError, httpx.HTTPError) as exc:
                        what = "waiting for the next chunk"
                        raise self._mapped(exc, what, cfg.idle_timeout_s) from None
        except LocalModelError as exc:
            self._report(exc)
            raise
        finally:
            if not answered:
                self.breaker.release()

    async def models(self) -> dict[str, Any]:
        """The server's `/models` answer, as it sent it."""
        async with self._call():
            return await self._json("GET", "models", None, self.config.timeout_s)

    async def embeddings(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """`/embeddings`, passed through with `model` set to the configured one."""
        payload = {**body, "model": self.config.model}
        async with self._call():
            return await self._json("POST", "embeddings", payload, self.config.timeout_s)

    async def health(self, force: bool = False) -> Health:
        """GET health_path; the result is kept for health_ttl_s. Does not touch the breaker."""
        if self._health is not None and not force and time.monotonic() < self._health_until:
            return self._health
        cfg = self.config
        start = time.perf_counter()
        try:
            async with self._errors("health check", cfg.connect_timeout_s + HEALTH_TIMEOUT_S):
                response = await self._http().get(cfg.url(cfg.health_path), headers=self._headers())
            if response.status_code != 200:
                ok, detail = False, f"HTTP {response.status_code}: {_message_of(response.content)}"
            else:
                ok, detail = True, self._served(response.content)
        except LocalModelError as exc:
            ok, detail = False, str(exc)
        latency = (time.perf_counter() - start) * 1000
        self._health = Health(ok, round(latency, 1), detail, time.time())
        self._health_until = time.monotonic() + cfg.health_ttl_s
        return self._health

    def status(self) -> str:
        """One line for the console: "ok", "down: ...", "circuit open ..." or "unknown (...)"."""
        if self.breaker.state != "closed":
            return "circuit " + self.breaker.describe()
        if self._health is None:
            return "unknown (not checked yet)"
        return "ok" if self._health.ok else f"down: {self._health.detail}"

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.aclose()

    # -- the calls

    def _http(self) -> httpx.AsyncClient:
        """The pooled client of the running event loop (a client cannot move between loops)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            cfg = self.config
            self._wire = self._transport or LocalModelTransport(cfg.max_connections)
            self._client = httpx.AsyncClient(
                transport=self._wire, timeout=httpx.Timeout(None, connect=cfg.connect_timeout_s),
                trust_env=False,
            )  # fmt: skip
            self._loop = loop
        return self._client

    async def _open(
        self, method: str, path: str, payload: dict[str, Any] | None,
        accept: str = "application/json",
    ) -> httpx.Response:  # fmt: skip
        """The response to one request, its body not read yet (close it with `aclose`).

        The request goes to the client's transport itself rather than through
        `AsyncClient.send`: the client's cookie jar, auth and redirect steps have nothing to do
        here (a local model sets no cookies we keep and no redirect is followed) and cost about a
        tenth of the gateway's CPU for a short streamed answer. The timeouts are the client's.
        """
        self._http()
        wire = self._wire
        assert wire is not None
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = httpx.URL(self.config.url(path))
        request = httpx.Request(
            method, url, json=payload, headers=self._headers(accept),
            extensions={"timeout": self._timeouts},
        )  # fmt: skip
        response = await wire.handle_async_request(request)
        response.request = request
        return response

    def _headers(self, accept: str = "application/json") -> dict[str, str]:
        """Ours only: a request sent with `_open` carries none of the client's defaults (no
        Accept-Encoding, so the server sends the stream as it is)."""
        headers = {"accept": accept, "user-agent": USER_AGENT}
        if self.config.api_key:
            headers["authorization"] = f"Bearer {self.config.api_key}"
        return headers

    def _payload(self, body: Mapping[str, Any], stream: bool) -> dict[str, Any]:
        payload = {**body, "model": self.config.model, "stream": stream}
        if not stream:
            payload.pop("stream_options", None)
        return payload

    async def _json(
        self, method: str, path: str, payload: dict[str, Any] | None, timeout_s: float
    ) -> dict[str, Any]:
        """A whole JSON object from the server, within timeout_s, or a LocalModelError."""
        async with self._errors(f"{method} /{path}", timeout_s):
            response = await self._open(method, path, payload)
            try:
                await self._raise_for_status(response)
                body = await _read_capped(response, MAX_ANSWER_BYTES)
            finally:
                await response.aclose()
        if body is None:
            raise self._error("bad_response", f"answer larger than {MAX_ANSWER_BYTES} bytes")
        doc = self._parse(body.decode("utf-8", "replace"))
        if not isinstance(doc, dict):
            raise self._error("bad_response", f"expected a JSON object, got {type(doc).__name__}")
        return doc

    async def _chunks(self, response: httpx.Response) -> AsyncGenerator[dict[str, Any], None]:
        finished = False
        events = sse_data(_body_bytes(response))
        async for data in events:
            if data.strip() == "[DONE]":
                await _drain(events)
                break
            chunk = self._parse(data)
            if not isinstance(chunk, dict):
                raise self._error(
                    "bad_response", f"stream chunk is not a JSON object: {data[:80]!r}"
                )
            if "error" in chunk:
                raise self._error_event(chunk)
            choices = chunk.get("choices")
            if not isinstance(choices, list):
                raise self._error("bad_response", f"stream chunk without choices: {data[:80]!r}")
            finished = finished or any(isinstance(c, dict) and c.get("finish_reason")
                                       for c in choices)  # fmt: skip
            yield chunk
        if not finished:  # e.g. llama-cpp-python's server cuts a stream when another one waits
            raise self._error(
                "bad_response", "the stream ended before the answer finished (no finish_reason)"
            )

    async def _raise_for_status(self, response: httpx.Response) -> None:
        if response.status_code < 300:
            return
        body = await _read_capped(response, 64 * 1024) or b""
        raise self._error(
            "http_error", f"HTTP {response.status_code}: {_message_of(body)}", response.status_code
        )

    def _served(self, body: bytes) -> str:
        """What a healthy /models answer says: the model names, and whether ours is among them."""
        try:
            names = [m.get("id") for m in json.loads(body).get("data", [])]
        except (ValueError, AttributeError, TypeError):
            return "HTTP 200"
        if self.config.model in names:
            return f"serving {self.config.model}"
        return f"HTTP 200, but {self.config.model!r} is not listed (serving {names[:5]})"

    # -- errors and the breaker

    def _error(self, kind: Kind, detail: str, status: int | None = None) -> LocalModelError:
        return LocalModelError(self.config.name, kind, detail, status)

    def _error_event(self, chunk: dict[str, Any]) -> LocalModelError:
        error = chunk["error"]
        message = error.get("message") if isinstance(error, dict) else error
        code = error.get("code") if isinstance(error, dict) else None
        status = code if isinstance(code, int) and 400 <= code < 600 else None
        kind: Kind = "http_error" if status else "bad_response"
        return self._error(kind, f"error in the stream: {str(message)[:200]}", status)

    def _parse(self, text: str) -> Any:
        try:
            return json.loads(text)
        except ValueError as exc:
            raise self._error("bad_response", f"malformed JSON ({exc}): {text[:80]!r}") from None

    @contextlib.asynccontextmanager
    async def _errors(self, what: str, timeout_s: float) -> AsyncIterator[None]:
        """Within timeout_s; network and protocol failures become LocalModelError."""
        try:
            async with asyncio.timeout(timeout_s):
                yield
        except (TimeoutError, httpx.HTTPError) as exc:
            raise self._mapped(exc, what, timeout_s) from None

    def _mapped(self, exc: Exception, what: str, timeout_s: float) -> LocalModelError:
        """A timeout or an httpx failure while doing `what`, as the LocalModelError for it."""
        url = self.config.base_url
        if isinstance(exc, TimeoutError):
            return self._error("timeout", f"{what}: no answer from {url} in {timeout_s:g} s")
        if isinstance(exc, httpx.ConnectTimeout):
            return self._error("unavailable", f"cannot connect to {url} (timed out)")
        if isinstance(exc, httpx.TimeoutException):
            return self._error("timeout", f"{what}: {type(exc).__name__} from {url}")
        if isinstance(exc, httpx.ConnectError):
            return self._error("unavailable", f"cannot connect to {url}: {exc}")
        if isinstance(exc, httpx.RemoteProtocolError):
            return self._error("bad_response", f"{what}: {url} broke the answer off: {exc}")
        return self._error("unavailable", f"{what}: {type(exc).__name__}: {exc}")

    def _admit(self) -> None:
        if not self.breaker.allow():
            detail = f"{self.config.base_url} failed {self.breaker.failures} times in a row "
            detail += (
                f"(last: {self.breaker.last_error}); retrying in {self.breaker.retry_in():.0f} s"
            )
            raise self._error("circuit_open", detail)

    def _report(self, exc: LocalModelError) -> None:
        """A refusal of the request itself (4xx but 408/429) means the server is up."""
        if exc.kind == "circuit_open":
            return
        if (
            exc.kind == "http_error"
            and exc.status
            and exc.status < 500
            and exc.status not in (408, 429)
        ):
            self.breaker.success()
        else:
            self.breaker.failure(str(exc))

    @contextlib.asynccontextmanager
    async def _call(self) -> AsyncIterator[None]:
        """One call through the breaker: refused while open, its outcome reported after."""
        self._admit()
        try:
            yield
        except LocalModelError as exc:
            self._report(exc)
            raise
        except BaseException:
            self.breaker.release()
            raise
        self.breaker.success()


class LocalModels:
    """The configured local models by name, for the proxy, the gateway and the console."""

    def __init__(
        self,
        configs: Mapping[str, LocalModelConfig],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._models = {name: LocalModel(cfg, transport) for name, cfg in configs.items()}

    def get(self, name: str) -> LocalModel:
        try:
            return self._models[name]
        except KeyError:
            known = ", ".join(self._models) or "none configured"
            raise LocalModelConfigError(f"unknown local model {name!r} (known: {known})") from None

    def names(self) -> tuple[str, ...]:
        return tuple(self._models)

    def pick(self, names: Iterable[str]) -> tuple[LocalModel, ...]:
        """The configured models among `names`, in that order (unknown names are skipped)."""
        return tuple(self._models[n] for n in names if n in self._models)

    def __contains__(self, name: object) -> bool:
        return name in self._models

    def __len__(self) -> int:
        return len(self._models)

    async def check(self, force: bool = False) -> dict[str, Health]:
        """Health of every model, checked side by side (cached results are reused)."""
        results = await asyncio.gather(*(m.health(force) for m in self._models.values()))
        return dict(zip(self._models, results, strict=True))

    def status(self) -> dict[str, str]:
        """name -> one status line (see LocalModel.status), for the console and heartbeats."""
        return {name: model.status() for name, model in self._models.items()}

    async def aclose(self) -> None:
        for model in self._models.values():
            await model.aclose()


async def _drain(events: AsyncIterator[str], within_s: float = 0.25) -> None:
    """Read what follows `[DONE]` (normally just the end of the body) so the connection goes
    back to the pool instead of being closed; a server that keeps the stream open is left."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within_s):
            async for _ in events:
                pass


def _completion_problem(doc: dict[str, Any]) -> str:
    if doc.get("object", "chat.completion") != "chat.completion":
        return f"object is {doc.get('object')!r}"
    choices = doc.get("choices")
    if not isinstance(choices, list) or not choices:
        return "no choices"
    first = choices[0]
    if not isinstance(first, dict) or not isinstance(first.get("message"), dict):
        return "choices[0] has no message"
    return ""


def _message_of(body: bytes) -> str:
    """The error message in an error body ({"error": {"message"}}, {"detail"}, ...) or its start."""
    text = body.decode("utf-8", "replace")
    try:
        doc = json.loads(text)
    except ValueError:
        return text[:200].strip() or "(empty body)"
    if isinstance(doc, dict):
        error = doc.get("error", doc.get("detail", doc.get("message")))
        if isinstance(error, dict):
            error = error.get("message", error)
        if error is not None:
            return str(error)[:200]
    return text[:200]


def _body_bytes(response: httpx.Response) -> AsyncIterable[bytes]:
    """The body's bytes as they come: straight from the transport's stream when the server sent
    it unencoded (an SSE stream nearly always is), else through httpx's decoders."""
    if response.headers.get("content-encoding", "identity").strip().lower() == "identity":
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        return stream
    return response.aiter_bytes()


async def _read_capped(response: httpx.Response, limit: int) -> bytes | None:
    """The body, or None when it is longer than limit bytes."""
    parts: list[bytes] = []
    size = 0
    async for part in response.aiter_bytes():
        size += len(part)
        if size > limit:
            return None
        parts.append(part)
    return b"".join(parts)


class LocalModelPool:
    """The clients for a configuration that can change (a policy reloaded while running): the
    same `LocalModels` while the configuration is equal, new ones (the old closed in the
    background) when it changes."""

    def __init__(self) -> None:
        self.models = LocalModels({})
        self._configs: dict[str, LocalModelConfig] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def current(self, configs: Mapping[str, LocalModelConfig]) -> LocalModels:
        if dict(configs) != self._configs:
            old, self.models = self.models, LocalModels(configs)
            self._configs = dict(configs)
            self._close_later(old)
        return self.models

    def _close_later(self, old: LocalModels) -> None:
        try:
            task = asyncio.get_running_loop().create_task(old.aclose())
        except RuntimeError:  # no loop (tests, start-up): nothing is open yet
            return
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        await self.models.aclose()
