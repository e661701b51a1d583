"""The console application: screens as modes, keys, the audit reader and the policy file."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from dlpproxy.tui.dashboard import DashboardScreen
from dlpproxy.tui.incident import IncidentScreen
from dlpproxy.tui.live import LiveScreen
from dlpproxy.tui.policy_file import PolicyFile
from dlpproxy.tui.policy_screen import PolicyScreen
from dlpproxy.tui.queries import AuditReader
from dlpproxy.tui.status import StatusScreen

HELP = """\
[b]dlpproxy tui[/b]: keyboard first, the mouse works too.

[b]Anywhere[/b]   l Live  d Dashboard  p Policy  s Status  ? help  q quit
[b]Live[/b]       / filter: user:NAME category:C action:A service:S, or words
           to search · Enter open · space pause · g newest · G last row
           u this user only · c clear the filter · Esc leave the filter
[b]Incident[/b]   c copy id · r reviewed · f false positive · x unmark · Esc back
[b]Dashboard[/b]  w time window (1 h, 24 h, 7 d, 30 d) · r refresh
[b]Policy[/b]     space toggle mode / next action · e edit threshold · R reload
           Each change is validated and written at once; the proxy
           reloads the file by itself.
[b]Status[/b]     r refresh

Esc or ? closes this help."""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "app.pop_screen", "Close")
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen VerticalScroll { width: 78; max-width: 100%; height: auto; max-height: 100%;
                                border: round $primary; background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(HELP)


class DlpTui(App[None]):
    TITLE = "dlpproxy"
    ENABLE_COMMAND_PALETTE = False
    MODES: ClassVar[dict[str, str | Callable[[], Screen[Any]]]] = {
        "live": LiveScreen,
        "dashboard": DashboardScreen,
        "status": StatusScreen,
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l", "switch_mode('live')", "Live", show=False),
        Binding("d", "switch_mode('dashboard')", "Dashboard", show=False),
        Binding("p", "switch_mode('policy')", "Policy", show=False),
        Binding("s", "switch_mode('status')", "Status", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        db: Path,
        policy: Path,
        *,
        now: Callable[[], float] = time.time,
        poll_s: float = 1.0,
    ):
        self.reader = AuditReader(db)  # before the app starts: a bad store is a clear error
        self.policy = PolicyFile(policy)
        self.now = now
        self.poll_s = poll_s
        self.live: LiveScreen | None = None  # set by the Live screen when it mounts
        super().__init__()
        self.add_mode("policy", lambda: PolicyScreen(self.policy))

    @property
    def live_screen(self) -> LiveScreen:
        assert self.live is not None, "the Live screen is not mounted yet"
        return self.live

    async def live_ready(self) -> None:
        """Wait until the Live screen has shown its first page (tests and the benchmark)."""
        while self.live is None:
            await asyncio.sleep(0.001)
        await self.live.loaded.wait()

    def on_mount(self) -> None:
        self.switch_mode("live")

    def open_incident(self, event_id: str) -> None:
        self.push_screen(IncidentScreen(event_id))

    def marks_changed(self) -> None:
        if self.live is not None:
            self.live.refresh_marks()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def on_unmount(self) -> None:
        self.reader.close()
