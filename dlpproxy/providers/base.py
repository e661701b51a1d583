"""The adapter interface: a plain view of an HTTP request, what was extracted from it, an answer.

An adapter knows one service's wire format. It recognises the service's requests (`matches`),
finds the user-supplied text with its place in the body (`extract`), puts redacted text back
(`rewrite`), answers in the service's own format when a prompt is blocked (`block`) and
translates to and from OpenAI Chat Completions for a local model (`to_openai`, `from_openai`,
`stream_translator`). Nothing here depends on mitmproxy: the addon and the gateway both build a
`Request` from what they received.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qsl, urlsplit

from dlpproxy.errors import BodyError
from dlpproxy.providers.jsonpath import JsonPath, render
from dlpproxy.types import Prompt, Segment

INCIDENT_HEADER = "x-dlpproxy-incident"


class UnknownShape(BodyError):
    """Valid JSON, but not the shape this adapter knows: the service changed its format.

    Callers fall back to the generic adapter so that the text is still scanned.
    """


@dataclass(frozen=True, slots=True)
class Request:
    """An HTTP request as the proxy saw it; `path` includes the query string."""

    method: str
    host: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    content_type: str = ""

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)

    @property
    def route(self) -> str:
        """The path without the query string."""
        return urlsplit(self.path).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))

    @property
    def mime(self) -> str:
        """`application/json; charset=utf-8` -> `application/json`."""
        return self.content_type.split(";", 1)[0].strip().lower()

    def content_type_param(self, name: str) -> str | None:
        for part in self.content_type.split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.strip().lower() == name:
                return value.strip().strip('"')
        return None


@dataclass(frozen=True, slots=True)
class Response:
    """An answer to send to the client instead of (or translated from) the upstream's."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


@dataclass(frozen=True, slots=True)
class Place:
    """Where one segment's text lives in the body, so that `rewrite` can put new text there.

    kind: `json` (a string leaf at `path`), `json-base64` (a base64 string leaf holding text in
    `encoding`), `form` (`path` = (field name, occurrence)), `multipart` (`path` = (part index,),
    the part's bytes in `encoding`) or `extracted` (text pulled out of a PDF or DOCX: scanned,
    but it cannot be written back).
    """

    kind: str
    path: JsonPath
    encoding: str = "utf-8"

    @property
    def rewritable(self) -> bool:
        return self.kind != "extracted"


@dataclass(frozen=True, slots=True)
class Unscanned:
    """Content that was seen but could not be turned into text (an image, an encrypted PDF)."""

    where: str
    reason: str


@dataclass(frozen=True, slots=True)
class Extracted:
    """The user-supplied text of one request, where each piece is, and what the client asked for.

    `places[i]` belongs to `prompt.segments[i]`. `unscanned` lists parts the policy must decide
    on without a scan (fail closed blocks them).
    """

    prompt: Prompt
    places: tuple[Place, ...]
    model: str | None = None
    stream: bool = False
    unscanned: tuple[Unscanned, ...] = ()


class Collector:
    """Gathers segments and their places in body order while an adapter walks a body."""

    def __init__(self) -> None:
        self.segments: list[Segment] = []
        self.places: list[Place] = []
        self.unscanned: list[Unscanned] = []

    def add(self, text: object, path: JsonPath, kind: str = "json", where: str = "") -> None:
        """Keep `text` if it is a non-blank string; other values are not user text."""
        if isinstance(text, str) and text.strip():
            self.segments.append(Segment(text, where or render(path)))
            self.places.append(Place(kind, path))

    def add_place(self, text: str, place: Place, where: str) -> None:
        self.segments.append(Segment(text, where))
        self.places.append(place)

    def skip(self, where: str, reason: str) -> None:
        self.unscanned.append(Unscanned(where, reason))

    def result(self, model: str | None = None, stream: bool = False) -> Extracted:
        return Extracted(
            Prompt(tuple(self.segments)),
            tuple(self.places),
            model,
            stream,
            tuple(self.unscanned),
        )


class StreamTranslator(Protocol):
    """Turns OpenAI chat.completion.chunk dicts into the service's streamed bytes."""

    content_type: str

    def feed(self, chunk: dict[str, Any]) -> bytes: ...

    def finish(self) -> bytes: ...


@runtime_checkable
class Adapter(Protocol):
    name: str

    def matches(self, req: Request) -> bool: ...

    def extract(self, req: Request) -> Extracted: ...

    def rewrite(self, req: Request, replacements: dict[int, str]) -> bytes: ...

    def block(
        self, req: Request, extracted: Extracted, message: str, incident_id: str
    ) -> Response: ...

    def to_openai(self, req: Request) -> dict[str, Any]: ...

    def from_openai(self, completion: dict[str, Any], req: Request) -> Response: ...

    def stream_translator(self, req: Request) -> StreamTranslator: ...


def translated(translator: StreamTranslator, chunks: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """OpenAI chunks through one translator, piece by piece, ending with its tail."""
    for chunk in chunks:
        data = translator.feed(chunk)
        if data:
            yield data
    tail = translator.finish()
    if tail:
        yield tail


def stream_from_openai(
    adapter: Adapter, chunks: Iterable[dict[str, Any]], req: Request
) -> Iterator[bytes]:
    """Translate a whole OpenAI chunk stream into the service's streamed bytes, piece by piece."""
    return translated(adapter.stream_translator(req), chunks)
