"""What every console screen shares: action colours, time format, the too-small-terminal note."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import Static

if TYPE_CHECKING:
    from dlpproxy.tui.app import DlpTui

ACTION_STYLE = {
    "block": "bold red",
    "reroute": "bold magenta",
    "redact": "yellow",
    "monitor": "cyan",
    "allow": "green",
}
VERDICT_MARK = {"reviewed": "✓", "false_positive": "FP"}
MIN_WIDTH, MIN_HEIGHT = 60, 15
TABS = (("live", "l", "Live"), ("dashboard", "d", "Dashboard"), ("policy", "p", "Policy"),
        ("status", "s", "Status"))  # fmt: skip


def action_text(action: str) -> Text:
    return Text(action, style=ACTION_STYLE.get(action, ""))


def when(ts: float, with_date: bool = True) -> str:
    return datetime.fromtimestamp(ts).strftime("%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def age(seconds: float) -> str:
    """`4 s`, `3 min`, `2 h`, `5 d`: how long ago, short."""
    seconds = max(0.0, seconds)
    for limit, unit, size in ((120, "s", 1), (7200, "min", 60), (172800, "h", 3600)):
        if seconds < limit:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds / 86400:.0f} d"


class ConsoleScreen(Screen[None]):
    """A screen whose body gives way to a note when the terminal is too small to use."""

    DEFAULT_CSS = """
    ConsoleScreen #too-small { display: none; height: 1fr; content-align: center middle; }
    ConsoleScreen.-small #too-small { display: block; }
    ConsoleScreen.-small .body { display: none; }
    ConsoleScreen .title { height: 1; background: $primary-background; padding: 0 1; }
    ConsoleScreen .note { height: auto; max-height: 3; padding: 0 1; }
    ConsoleScreen .error { color: $error; }
    """

    @property
    def console(self) -> DlpTui:
        return self.app  # type: ignore[return-value]

    def title_bar(self, current: str) -> Static:
        """`dlpproxy  l Live  d Dashboard …` with the current screen highlighted."""
        text = Text.assemble(("dlpproxy ", "bold"))
        for mode, key, label in TABS:
            style = "bold reverse" if mode == current else ""
            text.append(" ")
            text.append(f" {key} {label} ", style=style)
        text.append("   ? help  q quit", style="dim")
        return Static(text, classes="title")

    def too_small(self) -> ComposeResult:
        yield Static(
            f"terminal too small: needs {MIN_WIDTH}x{MIN_HEIGHT}; enlarge it, or press q to quit",
            id="too-small",
        )

    def on_resize(self, event: Resize) -> None:
        self._fit(event.size.width, event.size.height)

    def on_screen_resume(self) -> None:
        self._fit(self.app.size.width, self.app.size.height)

    def _fit(self, width: int, height: int) -> None:
        self.set_class(width < MIN_WIDTH or height < MIN_HEIGHT, "-small")
