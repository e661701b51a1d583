"""The generic adapter: unknown JSON shapes, urlencoded forms, multipart uploads and files."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from pathlib import Path

import pytest

from dlpproxy.errors import BodyError
from dlpproxy.providers import Request
from dlpproxy.providers.files import DOCX_TYPE
from dlpproxy.providers.generic import GenericAdapter

FIXTURES = Path(__file__).parent / "fixtures" / "providers"
ADAPTER = GenericAdapter()
BOUNDARY = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
CSV = b"customer,email,plan\nAcme GmbH,billing@acme.example,enterprise\n"
WORDML = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
TYPES = "http://schemas.openxmlformats.org/package/2006/content-types"


def docx_bytes(paragraphs: list[str]) -> bytes:
    """A minimal DOCX: the parts Word needs to open it, one run per paragraph."""
    body = "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs)
    document = (
        f'<?xml version="1.0" encoding="UTF-8"?>'
        f'<w:document xmlns:w="{WORDML}"><w:body>{body}</w:body></w:document>'
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>',
        )
        archive.writestr("word/document.xml", document)
    return buffer.getvalue()


def pdf_bytes(text: str) -> bytes:
    """A one-page PDF whose content stream draws `text` in Helvetica."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def multipart(*parts: tuple[str, str | None, str, bytes]) -> Request:
    """(field, filename, content type, data) parts as a browser would send them."""
    body = bytearray()
    for name, filename, mime, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        body += f"Content-Type: {mime}\r\n\r\n".encode() if mime else b"\r\n"
        body += data + b"\r\n"
    body += f"--{BOUNDARY}--\r\n".encode()
    return Request(
        "POST",
        "chat.mistral.ai",
        "/api/upload",
        (),
        bytes(body),
        f"multipart/form-data; boundary={BOUNDARY}",
    )


def json_request(body: bytes) -> Request:
    return Request("POST", "poe.com", "/api/gql_POST", (), body, "application/json")


def test_generic_matches_any_request_with_a_body():
    assert ADAPTER.matches(json_request(b"{}"))


def test_generic_does_not_match_an_empty_get():
    assert not ADAPTER.matches(Request("GET", "poe.com", "/", (), b""))


def test_generic_finds_the_prompt_in_an_unknown_json_shape():
    extracted = ADAPTER.extract(json_request((FIXTURES / "unknown_ui.json").read_bytes()))
    assert [(s.where, s.text) for s in extracted.prompt.segments] == [
        ("operationName", "sendMessageMutation"),
        ("variables.bot", "capybara"),
        (
            "variables.query",
            "Draft a reply to the customer: their contract number is CT-88412 and renewal is "
            "due 2027-01-31.",
        ),
        ("variables.source.sourceType", "chat_input"),
        ("queryName", "sendMessageMutation"),
    ]


def test_generic_skips_uuids_plain_urls_and_timestamps():
    values = {
        "a": "3f2b8c1e-4d5a-4b6c-8d7e-9f0a1b2c3d4e",
        "b": "https://x.example/p",
        "c": "2026-11-20T09:14:03Z",
        "e": "real words here",
    }
    segments = ADAPTER.extract(json_request(json.dumps(values).encode())).prompt.segments
    assert [s.where for s in segments] == ["e"]


def test_generic_keeps_digit_strings_such_as_card_numbers():
    body = json.dumps({"card": "4111111111111111"}).encode()
    assert [s.text for s in ADAPTER.extract(json_request(body)).prompt.segments] == [
        "4111111111111111"
    ]


def test_generic_keeps_urls_with_credentials_or_a_query():
    values = {"a": "https://deploy:s3cr3t@git.example/repo", "b": "https://x.example/p?sig=abc"}
    segments = ADAPTER.extract(json_request(json.dumps(values).encode())).prompt.segments
    assert [s.where for s in segments] == ["a", "b"]


def test_generic_keeps_a_bare_key_that_looks_like_base64():
    key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYwJalrXUtnFEMI/K7MDENG/bPxRfiCY"
    segments = ADAPTER.extract(json_request(json.dumps({"note": key}).encode())).prompt.segments
    assert [s.text for s in segments] == [key]


def test_generic_rewrite_of_json_changes_only_that_leaf():
    req = json_request((FIXTURES / "unknown_ui.json").read_bytes())
    new = json.loads(ADAPTER.rewrite(req, {2: "Draft a reply to the customer: [CONTRACT_1]"}))
    expected = json.loads(req.body)
    expected["variables"]["query"] = "Draft a reply to the customer: [CONTRACT_1]"
    assert new == expected


def test_generic_reads_urlencoded_form_fields():
    body = b"f.req=%5B%22my+password+is+hunter2%22%5D&at=AJvLN6M"
    form = "application/x-www-form-urlencoded;charset=UTF-8"
    req = Request("POST", "gemini.google.com", "/_/BardChatUi/data/batchexecute", (), body, form)
    segments = ADAPTER.extract(req).prompt.segments
    assert [(s.where, s.text) for s in segments] == [
        ("form:f.req", '["my password is hunter2"]'),
        ("form:at", "AJvLN6M"),
    ]


def test_generic_rewrite_of_form_field_keeps_other_fields():
    req = Request(
        "POST",
        "gemini.google.com",
        "/x",
        (),
        b"f.req=secret+text&at=AJvLN6M",
        "application/x-www-form-urlencoded",
    )
    assert ADAPTER.rewrite(req, {0: "[REDACTED]"}) == b"f.req=%5BREDACTED%5D&at=AJvLN6M"


def test_generic_form_with_invalid_percent_utf8_is_a_body_error():
    req = Request("POST", "x.ai", "/", (), b"q=%ff%fe", "application/x-www-form-urlencoded")
    with pytest.raises(BodyError, match="does not decode to UTF-8"):
        ADAPTER.extract(req)


def test_multipart_csv_upload_is_scanned_as_text():
    req = multipart(("file", "customers.csv", "text/csv", CSV))
    segments = ADAPTER.extract(req).prompt.segments
    assert [(s.where, s.text) for s in segments] == [("multipart:file=customers.csv", CSV.decode())]


def test_multipart_text_field_is_scanned_under_its_name():
    req = multipart(("message", None, "", b"please review the attached file"))
    assert [s.where for s in ADAPTER.extract(req).prompt.segments] == ["multipart:message"]


def test_multipart_docx_upload_yields_its_paragraphs():
    docx = docx_bytes(["Board meeting 12 Nov", "Acquisition of Fabrikam approved"])
    req = multipart(("file", "minutes.docx", DOCX_TYPE, docx))
    segment = ADAPTER.extract(req).prompt.segments[0]
    assert (segment.where, segment.text) == (
        "multipart:file=minutes.docx",
        "Board meeting 12 Nov\nAcquisition of Fabrikam approved",
    )


def test_multipart_pdf_upload_yields_its_text():
    req = multipart(("file", "offer.pdf", "application/pdf", pdf_bytes("Salary offer EUR 95000")))
    assert [s.text for s in ADAPTER.extract(req).prompt.segments] == ["Salary offer EUR 95000"]


def test_multipart_broken_pdf_is_unscanned_with_a_reason():
    req = multipart(("file", "scan.pdf", "application/pdf", b"%PDF-1.7\n garbage"))
    (unscanned,) = ADAPTER.extract(req).unscanned
    assert unscanned.where == "multipart:file=scan.pdf"
    assert unscanned.reason.startswith("PDF 'scan.pdf' ")


def test_multipart_binary_upload_is_unscanned_with_a_reason():
    req = multipart(("file", "photo.png", "image/png", PNG))
    extracted = ADAPTER.extract(req)
    assert extracted.prompt.segments == ()
    assert [(u.where, u.reason) for u in extracted.unscanned] == [
        ("multipart:file=photo.png", "binary file 'photo.png' (image/png): no text to scan")
    ]


def test_multipart_rewrite_replaces_one_part_and_keeps_every_other_byte():
    req = multipart(
        ("image", "photo.png", "image/png", PNG), ("file", "customers.csv", "text/csv", CSV)
    )
    new = ADAPTER.rewrite(req, {0: "customer,email,plan\n[ROWS_1]\n"})
    assert new == req.body.replace(CSV, b"customer,email,plan\n[ROWS_1]\n")


def test_multipart_rewrite_of_a_pdf_is_refused():
    req = multipart(("file", "offer.pdf", "application/pdf", pdf_bytes("Salary offer")))
    with pytest.raises(BodyError, match="came from a PDF/DOCX"):
        ADAPTER.rewrite(req, {0: "[REDACTED]"})


def test_multipart_truncated_body_is_a_body_error():
    req = multipart(("file", "customers.csv", "text/csv", CSV))
    truncated = Request(req.method, req.host, req.path, (), req.body[:-40], req.content_type)
    with pytest.raises(BodyError, match="truncated multipart body"):
        ADAPTER.extract(truncated)


def test_multipart_without_boundary_is_a_body_error():
    req = Request(
        "POST", "poe.com", "/upload", (), b"--x\r\n\r\nhi\r\n--x--", "multipart/form-data"
    )
    with pytest.raises(BodyError, match="without a boundary"):
        ADAPTER.extract(req)


def test_multipart_rfc5987_file_name_is_decoded():
    disposition = 'form-data; name="f"; filename="x.txt"; filename*=UTF-8\'\'r%C3%A9sum%C3%A9.txt'
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n"
    body = f"{head}hello world\r\n--{BOUNDARY}--\r\n"
    req = Request(
        "POST", "poe.com", "/upload", (), body.encode(), f"multipart/form-data; boundary={BOUNDARY}"
    )
    assert [s.where for s in ADAPTER.extract(req).prompt.segments] == ["multipart:file=résumé.txt"]


def test_plain_text_body_is_one_segment():
    req = Request(
        "POST", "chat.deepseek.com", "/api/v0/chat", (), b"my api key is abc", "text/plain"
    )
    assert [(s.where, s.text) for s in ADAPTER.extract(req).prompt.segments] == [
        ("body", "my api key is abc")
    ]


def test_json_data_url_holding_a_docx_is_extracted():
    data = base64.b64encode(docx_bytes(["Q3 forecast: revenue down 12%"])).decode()
    doc = {"attachment": f"data:{DOCX_TYPE};base64,{data}"}
    segments = ADAPTER.extract(json_request(json.dumps(doc).encode())).prompt.segments
    assert [(s.where, s.text) for s in segments] == [
        ("attachment", "Q3 forecast: revenue down 12%")
    ]


def test_generic_block_is_a_403_json_error_with_the_incident():
    req = json_request(b'{"q": "text here"}')
    answer = ADAPTER.block(req, ADAPTER.extract(req), "Blocked by dlpproxy.", "inc-1")
    assert answer.status == 403
    assert json.loads(answer.body) == {
        "error": {
            "message": "Blocked by dlpproxy.",
            "type": "dlpproxy_blocked",
            "param": None,
            "code": "blocked_by_dlp",
            "incident_id": "inc-1",
        }
    }
