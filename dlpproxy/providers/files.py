"""Text out of uploaded files: plain text and code as they are, PDF (pypdf) and DOCX (stdlib).

A file that yields no text (an image, an encrypted PDF, an unknown binary) comes back with a
reason instead, so the policy can block it rather than pass it unscanned.
"""

from __future__ import annotations

import base64
import binascii
import io
import zipfile
from dataclasses import dataclass
from xml.etree import ElementTree

from dlpproxy.providers.base import Place

EXTRACTED_PLACE = Place("extracted", ())
# Uncompressed size of a DOCX's XML parts we agree to read: larger is a zip bomb or not a memo.
DOCX_XML_LIMIT = 32 * 1024 * 1024
# Text extraction costs about a millisecond per page; past this a PDF is refused, not half read.
PDF_PAGE_LIMIT = 300
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
DOCX_PARTS = ("word/document.xml", "word/footnotes.xml", "word/endnotes.xml", "word/comments.xml")


@dataclass(frozen=True, slots=True)
class FileText:
    """The text of a file, how to write it back (`encoding`, empty when extracted), or why not."""

    text: str | None
    encoding: str = ""
    reason: str = ""

    @property
    def rewritable(self) -> bool:
        return self.text is not None and bool(self.encoding)


def text_of_file(data: bytes, name: str, mime: str = "") -> FileText:
    """Sniff the file (magic bytes first, then name and declared type) and read its text."""
    lowered = name.lower()
    if data.startswith(b"%PDF-") or mime == "application/pdf" or lowered.endswith(".pdf"):
        return _pdf_text(data, name)
    if data.startswith(b"PK\x03\x04") and (lowered.endswith(".docx") or mime == DOCX_TYPE):
        return _docx_text(data, name)
    decoded = decode_text(data)
    if decoded is not None:
        return FileText(decoded[0], decoded[1])
    kind = mime or "unknown type"
    return FileText(None, reason=f"binary file '{name}' ({kind}): no text to scan")


def text_of_data_url(url: str, name: str) -> tuple[str | None, str]:
    """`data:application/pdf;base64,...` -> (text, "") or (None, reason)."""
    head, sep, payload = url.partition(",")
    if not sep or not head.startswith("data:") or not head.endswith(";base64"):
        return None, f"file '{name}' is not a base64 data URL: not scanned"
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None, f"file '{name}' has invalid base64: not scanned"
    found = text_of_file(data, name, head[5:].split(";", 1)[0])
    return found.text, found.reason


def decode_text(data: bytes) -> tuple[str, str] | None:
    """(text, encoding) for UTF-8, UTF-16 with a BOM, or Windows-1252 text; None for binaries."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            return None
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8-sig"), (
            "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"
        )
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\r\n\f")
    return (text, "cp1252") if controls <= len(text) // 100 else None


def _pdf_text(data: bytes, name: str) -> FileText:
    try:
        import pypdf
    except ImportError:
        return FileText(
            None, reason=f"PDF '{name}': pypdf is not installed, cannot extract; blocked"
        )
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            return FileText(None, reason=f"PDF '{name}' is encrypted: cannot extract its text")
        if len(reader.pages) > PDF_PAGE_LIMIT:
            pages = len(reader.pages)
            return FileText(None, reason=f"PDF '{name}' has {pages} pages (limit {PDF_PAGE_LIMIT})")
        text = "\n".join(page.extract_text() or "" for page in reader.pages)
    except Exception as exc:  # pypdf raises many kinds on broken files; all mean "unreadable"
        return FileText(None, reason=f"PDF '{name}' cannot be read: {type(exc).__name__}: {exc}")
    if not text.strip():
        return FileText(None, reason=f"PDF '{name}' has no text layer (scanned images?)")
    return FileText(text)


def _docx_text(data: bytes, name: str) -> FileText:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = {info.filename: info for info in archive.infolist()}
            if "word/document.xml" not in members:
                return FileText(None, reason=f"DOCX '{name}' has no word/document.xml")
            parts = [members[p] for p in DOCX_PARTS if p in members]
            if sum(p.file_size for p in parts) > DOCX_XML_LIMIT:
                return FileText(None, reason=f"DOCX '{name}' unpacks to more than 32 MiB: blocked")
            texts = [_wordml_text(archive.read(p)) for p in parts]
    except (zipfile.BadZipFile, ElementTree.ParseError, OSError) as exc:
        return FileText(None, reason=f"DOCX '{name}' cannot be read: {exc}")
    return FileText("\n".join(t for t in texts if t))


def _wordml_text(xml: bytes) -> str:
    """Paragraphs of WordprocessingML as lines; tabs and breaks kept as whitespace."""
    lines = []
    for paragraph in ElementTree.fromstring(xml).iter(f"{_W}p"):
        pieces = []
        for node in paragraph.iter():
            if node.tag == f"{_W}t" and node.text:
                pieces.append(node.text)
            elif node.tag == f"{_W}tab":
                pieces.append("\t")
            elif node.tag in (f"{_W}br", f"{_W}cr"):
                pieces.append("\n")
        lines.append("".join(pieces))
    return "\n".join(lines).strip("\n")
