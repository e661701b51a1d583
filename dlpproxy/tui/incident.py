"""The Incident screen: one event's findings (masked), the deciding rule, and the review mark."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Footer, Static

from dlpproxy.errors import DlpError
from dlpproxy.tui.base import ConsoleScreen, action_text, when

VERDICT_LABEL = {"reviewed": "reviewed", "false_positive": "false positive", "": "not reviewed"}


class IncidentScreen(ConsoleScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,backspace", "app.pop_screen", "Back"),
        Binding("c", "copy", "Copy id"),
        Binding("r", "mark('reviewed')", "Reviewed"),
        Binding("f", "mark('false_positive')", "False pos."),
        Binding("x", "mark('')", "Unmark"),
    ]
    DEFAULT_CSS = """
    IncidentScreen #incident-id { height: 1; padding: 0 1; text-style: bold; }
    IncidentScreen #summary { height: auto; padding: 0 1; }
    IncidentScreen #findings-box { height: 1fr; padding: 0 1; }
    """

    def __init__(self, event_id: str):
        super().__init__()
        self.event_id = event_id
        self.event: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield from self.too_small()
        with Vertical(classes="body"):
            yield self.title_bar("live")
            yield Static(self.event_id, id="incident-id")
            yield Static("", id="summary")
            with VerticalScroll(id="findings-box"):
                yield Static("", id="findings")
        yield Footer()

    def on_mount(self) -> None:
        self.show()

    def show(self) -> None:
        try:
            self.event = self.console.reader.event(self.event_id)
        except DlpError as exc:
            self.query_one("#summary", Static).update(Text(str(exc), style="bold red"))
            return
        if self.event is None:
            self.query_one("#summary", Static).update(f"no event {self.event_id} in the store")
            return
        self.query_one("#summary", Static).update(_summary(self.event))
        self.query_one("#findings", Static).update(_findings(self.event["findings"]))
        self.query_one("#findings-box").focus()

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.event_id)
        self.notify(f"incident id {self.event_id} copied (OSC 52); it can also be selected")

    def action_mark(self, verdict: str) -> None:
        if self.event is None:
            return
        try:
            self.console.reader.mark(self.event_id, verdict, str(self.event.get("rule") or ""))
        except DlpError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(f"{self.event_id}: {VERDICT_LABEL[verdict]}")
        self.console.marks_changed()
        self.show()


def _summary(e: dict[str, Any]) -> Text:
    would = f" (would {e['would']})" if e.get("would") else ""
    text = Text.assemble(
        ("action ", "dim"), action_text(str(e["action"])), would,
        ("   rule ", "dim"), str(e.get("rule") or "-"),
        ("   review ", "dim"), (VERDICT_LABEL.get(str(e.get("verdict", "")), ""), "bold"), "\n",
        ("time ", "dim"), when(float(e["ts"])), ("   user ", "dim"), str(e.get("user") or "-"),
        ("   client ", "dim"), str(e.get("client") or "-"), "\n",
        ("service ", "dim"), str(e.get("service") or "-"), ("   host ", "dim"),
        f"{e.get('host') or '-'}{e.get('path') or ''}", "\n",
        ("scan ", "dim"), f"{float(e.get('scan_ms') or 0):.1f} ms",
        ("   prompt ", "dim"), f"{int(e.get('prompt_chars') or 0):,} chars",
        ("   categories ", "dim"), str(e.get("categories") or "-"),
    )  # fmt: skip
    if e.get("reason"):
        text.append("\nwhy ", "dim")
        text.append(str(e["reason"]))
    return text


def _findings(findings: list[dict[str, Any]]) -> Text:
    """Two lines per finding: what and who found it, then the masked excerpt."""
    text = Text()
    if not findings:
        return Text("no findings (allowed, or refused before a scan: see why)", style="dim")
    text.append(f"findings ({len(findings)})\n", style="bold")
    for n, f in enumerate(findings, 1):
        via = f" via {f['via']}" if f.get("via") else ""
        text.append(f"{n:>2}. {f.get('category', '')}/{f.get('type', '')}", style="bold")
        text.append(f"  {f.get('detector', '')} {float(f.get('score', 0)):.2f} "
                    f"{f.get('severity', '')}{via}  rule {f.get('rule') or '-'}\n")  # fmt: skip
        text.append(f"    {f.get('excerpt', '')}\n")
    return text
