"""The adapter of last resort: any JSON, form, multipart or text body to an AI host.

It does not know the service, so it scans every string that could be user text: all JSON string
leaves (but ids, URLs, timestamps and binary blobs), all form fields, every uploaded file. A UI
that changed its format overnight is still scanned, never waved through.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from dlpproxy.errors import BodyError
from dlpproxy.providers import files, forms, jsonpath
from dlpproxy.providers.base import (
    Collector,
    Extracted,
    Place,
    Request,
    Response,
    StreamTranslator,
)
from dlpproxy.providers.json_api import is_json_type
from dlpproxy.providers.openai_chat import ChatStream
from dlpproxy.providers.openai_format import blocked_error, json_response

MIN_TEXT = 4
METADATA_KEYS = frozenset(
    {"id", "uuid", "model", "role", "type", "object", "timezone", "locale", "language"}
    | {"content_type", "mime_type", "mimeType", "media_type", "action", "status"}
)
# Strings that are never user text. Digit strings stay (card and ID numbers), and so do URLs
# with credentials or a query string (tokens, presigned links).
_NOT_TEXT = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # UUID
    r"|https?://[^\s@?]+"  # a plain URL
    r"|\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:?\d\d)?",  # ISO timestamp
    re.IGNORECASE,
)
_BASE64 = re.compile(r"data:[\w.+/-]+;base64,[A-Za-z0-9+/]*={0,2}")


def _is_metadata_key(key: str) -> bool:
    suffixes = ("_id", "Id", "_uuid", "_at", "At", "hash", "Hash", "nonce", "Nonce", "Url", "_url")
    return key in METADATA_KEYS or key.endswith(suffixes)


class GenericAdapter:
    """Scans whatever an AI host receives; blocks with a JSON error the UI can show."""

    name = "generic"

    def matches(self, req: Request) -> bool:
        return bool(req.body)

    def extract(self, req: Request) -> Extracted:
        found = Collector()
        kind = req.mime
        if kind == "multipart/form-data":
            self._multipart(req, found)
        elif kind == "application/x-www-form-urlencoded":
            for i, (name, value) in enumerate(forms.parse_urlencoded(req.body)):
                found.add(value, (i,), "form", where=f"form:{name}")
        elif is_json_type(kind) and req.body.lstrip()[:1] in (b"{", b"["):
            walk_json(jsonpath.parse(req.body), (), found)
        else:
            self._whole_body(req, found)
        return found.result()

    def _multipart(self, req: Request, found: Collector) -> None:
        for i, part in enumerate(
            forms.parse_multipart(req.body, req.content_type_param("boundary"))
        ):
            data = req.body[part.start : part.end]
            label = f"file={part.filename}" if part.filename is not None else part.name
            where = f"multipart:{label}"
            got = files.text_of_file(data, part.filename or part.name, part.content_type)
            if got.text is None:
                found.skip(where, got.reason)
            elif got.text.strip():
                place = (
                    Place("multipart", (i,), got.encoding)
                    if got.rewritable
                    else files.EXTRACTED_PLACE
                )
                found.add_place(got.text, place, where)

    def _whole_body(self, req: Request, found: Collector) -> None:
        got = files.text_of_file(req.body, "body", req.mime)
        if got.text is None:
            found.skip("body", got.reason)
        elif got.text.strip():
            place = Place("body", (), got.encoding) if got.rewritable else files.EXTRACTED_PLACE
            found.add_place(got.text, place, "body")

    def rewrite(self, req: Request, replacements: dict[int, str]) -> bytes:
        places = self.extract(req).places
        chosen = {i: places[i] for i in replacements if 0 <= i < len(places)}
        if len(chosen) != len(replacements) or any(not p.rewritable for p in chosen.values()):
            raise BodyError("generic: a replaced segment does not exist or came from a PDF/DOCX")
        if req.mime == "multipart/form-data":
            parts = forms.parse_multipart(req.body, req.content_type_param("boundary"))
            spans = {i: parts[int(p.path[0])] for i, p in chosen.items()}
            edits = {
                (spans[i].start, spans[i].end): replacements[i].encode(p.encoding)
                for i, p in chosen.items()
            }
            return forms.splice(req.body, edits)
        if req.mime == "application/x-www-form-urlencoded":
            pairs = forms.parse_urlencoded(req.body)
            for i, p in chosen.items():
                pairs[int(p.path[0])] = (pairs[int(p.path[0])][0], replacements[i])
            return forms.dump_urlencoded(pairs)
        if any(p.kind == "body" for p in chosen.values()):
            ((index, text),) = replacements.items()
            return text.encode(chosen[index].encoding)
        doc = jsonpath.parse(req.body)
        for i, p in chosen.items():
            jsonpath.put(doc, p.path, replacements[i])
        return jsonpath.dump(doc)

    def block(self, req: Request, extracted: Extracted, message: str, incident_id: str) -> Response:
        """A 403 with an OpenAI-style error object: most web UIs show `error.message`."""
        return blocked_error(message, incident_id)

    def to_openai(self, req: Request) -> dict[str, Any]:
        text = "\n\n".join(s.text for s in self.extract(req).prompt.segments)
        return {"model": "", "messages": [{"role": "user", "content": text}]}

    def from_openai(self, completion: dict[str, Any], req: Request) -> Response:
        return json_response(completion)

    def stream_translator(self, req: Request) -> StreamTranslator:
        return ChatStream()


def walk_json(node: Any, path: jsonpath.JsonPath, found: Collector) -> None:
    """Every string leaf that could be user text, in document order."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and _is_metadata_key(str(key)):
                continue
            walk_json(value, (*path, key), found)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            walk_json(value, (*path, i), found)
    elif isinstance(node, str) and len(node.strip()) >= MIN_TEXT:
        if _NOT_TEXT.fullmatch(node.strip()):
            return
        if _BASE64.fullmatch(node):
            _add_blob(node, path, found)
            return
        found.add(node, path)


def _add_blob(value: str, path: jsonpath.JsonPath, found: Collector) -> None:
    """A data URL is a file inside JSON: text files and documents are read, the rest noted.

    Bare base64 stays text: it may be a key, and the engine decodes and rescans blobs itself.
    """
    where = jsonpath.render(path)
    head, _, payload = value.partition(",")
    if not head.startswith("data:"):
        found.add(value, path)
        return
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        found.add(value, path)
        return
    got = files.text_of_file(data, where, head[5:].split(";", 1)[0])
    if got.text is None:
        found.skip(where, got.reason)
    elif got.text.strip():
        found.add_place(got.text, files.EXTRACTED_PLACE, where)
