"""The shared half of the adapters for JSON APIs: parsing, rewriting by path, block answers."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from dlpproxy.errors import BodyError
from dlpproxy.providers import jsonpath
from dlpproxy.providers.base import (
    INCIDENT_HEADER,
    Collector,
    Extracted,
    Place,
    Request,
    Response,
    StreamTranslator,
    UnknownShape,
    translated,
)
from dlpproxy.providers.openai_format import chunks_of, completion


def is_json_type(mime: str) -> bool:
    """JSON bodies, and bodies without a declared type (some clients omit it)."""
    return mime in ("", "application/json", "text/json") or mime.endswith("+json")


def blocked_id(incident_id: str) -> str:
    return f"dlp-{incident_id}"


class JsonApiAdapter:
    """Base of the adapters whose requests are one JSON object.

    Subclasses set `name`, implement `matches`, `_walk` (collect the user text of a parsed
    body), `from_openai` and `stream_translator`, and may override `_model` and `_stream`.
    """

    name = "json"

    def matches(self, req: Request) -> bool:
        raise NotImplementedError

    def _walk(self, doc: dict[str, Any], found: Collector, req: Request) -> None:
        raise NotImplementedError

    def _model(self, doc: dict[str, Any], req: Request) -> str | None:
        model = doc.get("model")
        return model if isinstance(model, str) else None

    def _stream(self, doc: dict[str, Any], req: Request) -> bool:
        return doc.get("stream") is True

    def parse(self, req: Request) -> dict[str, Any]:
        """The body as a JSON object; BodyError names the adapter and what is wrong."""
        if not is_json_type(req.mime):
            raise BodyError(f"{self.name}: expected application/json, got '{req.mime}'")
        try:
            doc = jsonpath.parse(req.body)
        except BodyError as exc:
            raise BodyError(f"{self.name}: {exc.problem}") from None
        if not isinstance(doc, dict):
            raise UnknownShape(f"{self.name}: expected a JSON object, got {type(doc).__name__}")
        return doc

    def _collect(self, doc: dict[str, Any], req: Request) -> Collector:
        found = Collector()
        try:
            self._walk(doc, found, req)
        except (AttributeError, TypeError, KeyError) as exc:
            raise UnknownShape(f"{self.name}: unknown body shape ({exc})") from None
        return found

    def extract(self, req: Request) -> Extracted:
        doc = self.parse(req)
        return self._collect(doc, req).result(self._model(doc, req), self._stream(doc, req))

    def rewrite(self, req: Request, replacements: dict[int, str]) -> bytes:
        """The body with segment i's text replaced by `replacements[i]`; the rest kept."""
        doc = self.parse(req)
        places = self._collect(doc, req).places
        for index, text in replacements.items():
            if not 0 <= index < len(places):
                raise BodyError(f"{self.name}: no segment {index} (body has {len(places)})")
            place = places[index]
            if place.kind == "json":
                jsonpath.put(doc, place.path, text)
            elif place.kind == "json-base64":
                encoded = base64.b64encode(text.encode(place.encoding)).decode("ascii")
                jsonpath.put(doc, place.path, encoded)
            else:
                where = jsonpath.render(place.path)
                raise BodyError(
                    f"{self.name}: text extracted from a file cannot be rewritten", where
                )
        return jsonpath.dump(doc)

    def block(self, req: Request, extracted: Extracted, message: str, incident_id: str) -> Response:
        """Our message as the service's own answer (streamed when the client asked for a stream)."""
        done = completion(message, extracted.model, blocked_id(incident_id))
        if extracted.stream:
            translator = self.stream_translator(req)
            body = b"".join(translated(translator, chunks_of(done)))
            headers = (("content-type", translator.content_type), ("cache-control", "no-cache"))
            answer = Response(200, headers, body)
        else:
            answer = self.from_openai(done, req)
        return Response(
            answer.status, (*answer.headers, (INCIDENT_HEADER, incident_id)), answer.body
        )

    def to_openai(self, req: Request) -> dict[str, Any]:
        raise NotImplementedError

    def from_openai(self, completion: dict[str, Any], req: Request) -> Response:
        raise NotImplementedError

    def stream_translator(self, req: Request) -> StreamTranslator:
        raise NotImplementedError


def add_base64_text(
    found: Collector, data: object, path: jsonpath.JsonPath, media_type: str
) -> None:
    """Text documents sent as base64 (a .txt or .csv attached in an API call) are scanned too."""
    if not isinstance(data, str):
        return
    where = jsonpath.render(path)
    try:
        raw = base64.b64decode(data, validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        found.skip(where, f"base64 {media_type} that is not UTF-8 text: not scanned")
        return
    if text.strip():
        found.add_place(text, Place("json-base64", path), where)


class StreamingWebAdapter(JsonApiAdapter):
    """Browser chat UIs read every answer as SSE, so even a whole answer is sent as a stream."""

    def _stream(self, doc: dict[str, Any], req: Request) -> bool:
        return True

    def parse_or_empty(self, req: Request) -> dict[str, Any]:
        """The body for answer details (ids, model); an unreadable one gives defaults."""
        try:
            return self.parse(req)
        except BodyError:
            return {}

    def from_openai(self, completion: dict[str, Any], req: Request) -> Response:
        translator = self.stream_translator(req)
        body = b"".join(translated(translator, chunks_of(completion)))
        return Response(200, (("content-type", translator.content_type),), body)
