"""Reroute: answer a prompt with the company's own model, in the caller's format.

The intercepted request is translated to a Chat Completions request (`adapter.to_openai`), sent
to a local OpenAI-compatible model, and the answer is translated back (`adapter.from_openai`, or
the adapter's stream translator chunk by chunk when the caller streamed). A notice says where the
answer came from: a header always, and a banner line at the top of the answer when configured.

Failures never send the prompt anywhere else: each local model in the route is tried in turn
(the circuit breaker skips dead ones at once), and when none answers the caller gets our message
in its own format. A stream that breaks midway ends with a note, then a proper end of stream.
`Reroute.outcome` says what happened, for the audit event, once the answer is complete.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from dlpproxy.httpserver import HttpResponse
from dlpproxy.localmodel.client import LocalModel, LocalModelError
from dlpproxy.providers.base import Adapter, Extracted, Request, Response, translated
from dlpproxy.providers.openai_format import chunks_of, completion

NOTICE_HEADER = "x-dlpproxy-rerouted"
INCIDENT_HEADER = "x-dlpproxy-incident"
FAILED_MESSAGE = (
    "dlpproxy: this prompt holds {categories} and may only be answered by the company's own "
    "model, which is not available right now ({reason}). The prompt was not sent anywhere. "
    "Incident {incident}."
)
BROKEN_NOTE = "\n\n[dlpproxy: the company model stopped answering ({reason}); incident {incident}]"


@dataclass(slots=True)
class Reroute:
    """One rerouted request: what to translate, where to send it, and (after) what happened."""

    adapter: Adapter
    req: Request
    extracted: Extracted
    models: tuple[LocalModel, ...]
    incident: str
    categories: str = "sensitive data"
    banner: str = ""
    failed_message: str = FAILED_MESSAGE
    on_done: Callable[[Reroute], None] | None = None
    outcome: str = ""
    answered_by: str = ""
    ok: bool = False
    started: float = field(default_factory=time.monotonic)

    def finish(self, ok: bool, outcome: str) -> None:
        self.ok, self.outcome = ok, outcome
        if self.on_done is not None:
            callback, self.on_done = self.on_done, None
            callback(self)


async def answer_locally(job: Reroute) -> HttpResponse:
    """The caller-shaped answer from the first local model that answers (streamed if asked)."""
    try:
        chat = job.adapter.to_openai(job.req)
    except Exception as exc:  # a body the adapter cannot translate: refused, not sent
        return _failed(job, f"cannot translate the request: {type(exc).__name__}: {exc}")
    chat.pop("stream_options", None)
    errors: list[str] = []
    for model in job.models:
        try:
            if job.extracted.stream:
                return await _streamed(job, model, chat)
            done = await model.chat(chat)
        except LocalModelError as exc:
            errors.append(f"{model.config.name}: {exc}")
            continue
        job.answered_by = model.config.name
        answer = job.adapter.from_openai(_with_banner(done, job.banner), job.req)
        job.finish(True, f"answered by local model '{model.config.name}'")
        return _http(answer, job, model)
    return _failed(job, "; ".join(errors) or "no local model configured")


async def _streamed(job: Reroute, model: LocalModel, chat: dict[str, Any]) -> HttpResponse:
    """Open the stream and wait for its first chunk (errors before it try the next model)."""
    chunks = model.chat_stream(chat)
    try:
        first: dict[str, Any] | None = await anext(chunks)
    except StopAsyncIteration:
        first = None
    except BaseException:
        await chunks.aclose()
        raise
    job.answered_by = model.config.name
    translator = job.adapter.stream_translator(job.req)

    async def body() -> AsyncIterator[bytes]:
        try:
            if first is None:  # an empty stream: a complete, empty answer
                empty = completion(job.banner, None, job.incident)
                yield b"".join(translated(translator, chunks_of(empty)))
                job.finish(True, f"answered by local model '{model.config.name}' (empty)")
                return
            pending_space = bool(job.banner)  # the answer's leading space goes after a banner
            if job.banner:
                yield translator.feed(_banner_chunk(first, job.banner))
            pending_space = _strip_leading(first, pending_space)
            yield translator.feed(first)
            try:
                async for chunk in chunks:
                    pending_space = _strip_leading(chunk, pending_space)
                    yield translator.feed(chunk)
            except LocalModelError as exc:
                note = BROKEN_NOTE.format(reason=exc.kind, incident=job.incident)
                yield translator.feed(_text_chunk(first, note, "stop"))
                yield translator.finish()
                job.finish(False, f"local model '{model.config.name}' broke off: {exc}")
                return
            yield translator.finish()
            job.finish(True, f"answered by local model '{model.config.name}' (streamed)")
        finally:
            await chunks.aclose()
            if job.on_done is not None:  # the client went away before the end
                job.finish(False, f"client left while '{model.config.name}' was answering")

    async def never_started() -> None:  # the client left before the first byte was sent
        await chunks.aclose()
        job.finish(False, f"client left before '{model.config.name}' was heard")

    headers = (
        ("content-type", translator.content_type), ("cache-control", "no-cache"),
        (NOTICE_HEADER, model.config.name), (INCIDENT_HEADER, job.incident),
    )  # fmt: skip
    return HttpResponse(200, headers, _Body(body(), never_started))


class _Body:
    """A streamed body whose clean-up also runs when it is closed before its first chunk (an
    async generator closed unstarted skips its `finally`: the model's stream would stay open
    and the audit event unwritten)."""

    def __init__(
        self, chunks: AsyncIterator[bytes], never_started: Callable[[], Awaitable[None]]
    ) -> None:
        self._chunks = chunks
        self._never_started = never_started
        self._started = False

    def __aiter__(self) -> _Body:
        return self

    async def __anext__(self) -> bytes:
        self._started = True
        return await anext(self._chunks)

    async def aclose(self) -> None:
        if not self._started:
            self._started = True
            await self._never_started()
        closer = getattr(self._chunks, "aclose", None)
        if closer is not None:
            await closer()


def _failed(job: Reroute, reason: str) -> HttpResponse:
    """No local model answered: our message in the caller's format; nothing was sent out."""
    message = _format(job.failed_message, job, reason)
    answer = job.adapter.block(job.req, job.extracted, message, job.incident)
    job.finish(False, f"refused: no local model answered ({reason})")
    headers = (*answer.headers, (NOTICE_HEADER, "failed"))
    return HttpResponse(answer.status, headers, answer.body)


def _http(answer: Response, job: Reroute, model: LocalModel) -> HttpResponse:
    headers = (*answer.headers, (NOTICE_HEADER, model.config.name), (INCIDENT_HEADER, job.incident))
    return HttpResponse(answer.status, headers, answer.body)


def _format(template: str, job: Reroute, reason: str) -> str:
    try:
        return template.format(categories=job.categories, incident=job.incident, reason=reason)
    except (KeyError, IndexError, ValueError):
        return f"{template} ({reason}; incident {job.incident})"


def _with_banner(done: dict[str, Any], banner: str) -> dict[str, Any]:
    """The completion with the banner line on top of the first choice's text, if it has text."""
    if not banner:
        return done
    choices = done.get("choices") or []
    message = choices[0].get("message") if choices and isinstance(choices[0], dict) else None
    if isinstance(message, dict) and isinstance(message.get("content"), str | None):
        text = message.get("content") or ""
        if text or not message.get("tool_calls"):
            message["content"] = f"{banner}\n\n{text.lstrip()}" if text.strip() else banner
    return done


def _strip_leading(chunk: dict[str, Any], pending: bool) -> bool:
    """Drop the leading whitespace of the answer's first text (it follows the banner's blank
    line); True while no text has come yet."""
    if not pending:
        return False
    choices = chunk.get("choices") or []
    delta = choices[0].get("delta") if choices and isinstance(choices[0], dict) else None
    content = delta.get("content") if isinstance(delta, dict) else None
    if not isinstance(content, str) or not content:
        return True
    assert isinstance(delta, dict)
    delta["content"] = content.lstrip()
    return not delta["content"]


def _banner_chunk(first: dict[str, Any], banner: str) -> dict[str, Any]:
    chunk = _text_chunk(first, f"{banner}\n\n", None)
    chunk["choices"][0]["delta"]["role"] = "assistant"
    return chunk


def _text_chunk(like: dict[str, Any], text: str, finish: str | None) -> dict[str, Any]:
    """A chunk shaped like `like` (same id, model, created) carrying `text`."""
    return {
        "id": like.get("id", ""),
        "object": "chat.completion.chunk",
        "created": like.get("created", int(time.time())),
        "model": like.get("model", ""),
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}],
    }
