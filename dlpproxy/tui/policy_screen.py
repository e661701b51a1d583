"""The Policy screen: packs, rules and thresholds with their mode and action; edits are saved
validated and atomically, and the running proxy reloads the file on its own."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Input, Static

from dlpproxy.tui.base import ConsoleScreen, action_text
from dlpproxy.tui.policy_file import (
    PolicyEditError,
    PolicyFile,
    Setting,
    check_threshold,
    next_value,
)

MODE_STYLE = {"enforce": "bold", "monitor": "cyan"}


class PolicyScreen(ConsoleScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "change", "Toggle"),
        Binding("e", "edit", "Edit value"),
        Binding("R", "reload", "Reload file"),
        Binding("escape", "cancel", "Cancel", show=False),
    ]
    DEFAULT_CSS = """
    PolicyScreen #settings { height: 1fr; }
    PolicyScreen #value { height: 1; border: none; padding: 0 1; display: none; }
    PolicyScreen #value.-editing { display: block; }
    PolicyScreen #message { height: auto; max-height: 4; padding: 0 1; background: $boost; }
    """

    def __init__(self, policy: PolicyFile):
        super().__init__()
        self.policy = policy
        self.editing: Setting | None = None

    def compose(self) -> ComposeResult:
        yield from self.too_small()
        with Vertical(classes="body"):
            yield self.title_bar("policy")
            table: DataTable[str | Text] = DataTable(id="settings", cursor_type="row")
            for label, width in (("section", 14), ("name", 36), ("setting", 9), ("value", 8)):
                table.add_column(label, width=width, key=label)
            yield table
            yield Input(id="value")
            yield Static("", id="message")
        yield Footer()

    def on_mount(self) -> None:
        self.fill()
        self.query_one("#settings", DataTable).focus()

    def fill(self, message: str = "", error: bool = False) -> None:
        table = self.query_one("#settings", DataTable)
        row = table.cursor_row
        table.clear()
        for s in self.policy.settings:
            value = action_text(s.value) if s.kind == "action" else Text(
                s.value, style=MODE_STYLE.get(s.value, ""))  # fmt: skip
            table.add_row(s.section, s.name, s.kind, value, key=s.dotted)
        if self.policy.settings:
            table.move_cursor(row=min(row, len(self.policy.settings) - 1))
        if self.policy.error:
            message, error = self.policy.error, True
        elif not message:
            hint = "" if self.policy.writable else " · READ-ONLY: no write permission"
            message = f"{self.policy.path} · space: toggle mode / next action · e: edit{hint}"
            error = not self.policy.writable
        self.say(message, error)

    def say(self, message: str, error: bool = False) -> None:
        self.query_one("#message", Static).update(Text(message, style="bold red" if error else ""))

    def current(self) -> Setting | None:
        table = self.query_one("#settings", DataTable)
        if not self.policy.settings or not 0 <= table.cursor_row < len(self.policy.settings):
            return None
        return self.policy.settings[table.cursor_row]

    def action_change(self) -> None:
        setting = self.current()
        if setting is None:
            return
        if setting.kind == "threshold":
            self.action_edit()
            return
        self.apply(setting, next_value(setting))

    @on(DataTable.RowSelected, "#settings")
    def selected(self) -> None:
        self.action_change()

    def action_edit(self) -> None:
        setting = self.current()
        if setting is None:
            return
        if setting.kind != "threshold":
            self.say(f"{setting.name}: {setting.kind} is toggled with space", error=False)
            return
        self.editing = setting
        box = self.query_one("#value", Input)
        box.value = setting.value
        box.add_class("-editing")
        self.call_after_refresh(box.focus)  # once it is displayed
        self.say(f"new score for {setting.name} (0..1), Enter saves, Esc cancels")

    @on(Input.Submitted, "#value")
    def submitted(self, event: Input.Submitted) -> None:
        setting = self.editing
        if setting is None:
            return
        try:
            value = check_threshold(event.value.strip())
        except PolicyEditError as exc:
            self.say(str(exc), error=True)
            return
        self.action_cancel(keep_message=True)
        self.apply(setting, value)

    def action_cancel(self, keep_message: bool = False) -> None:
        self.editing = None
        box = self.query_one("#value", Input)
        box.remove_class("-editing")
        self.query_one("#settings", DataTable).focus()
        if not keep_message:
            self.fill()

    def apply(self, setting: Setting, value: str) -> None:
        try:
            done = self.policy.set(setting.key, value)
        except PolicyEditError as exc:
            self.say(str(exc), error=True)
            return
        self.fill(f"{done}; the proxy reloads it within a second")

    def action_reload(self) -> None:
        self.policy.reload()
        self.fill(f"reloaded {self.policy.path}")
