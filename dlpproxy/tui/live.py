"""The Live screen: decisions as they happen, newest first, filtered, searched, paused."""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Input, Static

from dlpproxy.errors import DlpError
from dlpproxy.tui.base import VERDICT_MARK, ConsoleScreen, action_text, when
from dlpproxy.tui.queries import Filters, Page, Row, parse_filters

PAGE = 100
COLUMNS = (("time", 14), ("user", 14), ("service", 11), ("action", 7), ("", 2),
           ("categories", 20))  # fmt: skip


class LiveScreen(ConsoleScreen):
    """Decisions newest first; the table grows by keyset pages as the cursor nears its end."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "search", "Filter"),
        Binding("space", "pause", "Pause"),
        Binding("enter", "open", "Open", show=False),
        Binding("g", "newest", "Newest"),
        Binding("G", "last", "Last row", show=False),
        Binding("u", "by_user", "This user", show=False),
        Binding("c", "clear", "Clear"),
        Binding("escape", "leave_input", "Back", show=False),
    ]
    DEFAULT_CSS = """
    LiveScreen #filter { height: 1; border: none; padding: 0 1; }
    LiveScreen #events { height: 1fr; }
    LiveScreen #state { height: 1; padding: 0 1; background: $boost; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.filters = Filters()
        self.rows: list[Row] = []
        self.paused = False
        self.pending = 0
        self.last_rowid = 0
        self.exhausted = False
        self.loaded = asyncio.Event()
        self.message = ""
        self.painted_at = 0.0
        self.next_cursor: tuple[float, str] | None = None
        self.searched_to: float | None = None
        self.generation = 0
        self.querying = False
        self.focus_table = False

    def compose(self) -> ComposeResult:
        yield from self.too_small()
        with Vertical(classes="body"):
            yield self.title_bar("live")
            yield Input(placeholder="/ filter: user:NAME category:C action:A service:S words",
                        id="filter")  # fmt: skip
            table: DataTable[Text | str] = DataTable(id="events", cursor_type="row")
            for label, width in COLUMNS:
                table.add_column(label, width=width, key=label or "mark")
            yield table
            yield Static("", id="state")
        yield Footer()

    def on_mount(self) -> None:
        self.console.live = self
        self.query_one("#events", DataTable).focus()
        self.reload()
        self.set_interval(self.console.poll_s, self.poll)

    # -- loading -------------------------------------------------------------------------
    def reload(self) -> None:
        """The newest page for the current filters, replacing the table (in a worker)."""
        self.loaded.clear()
        self.querying = True
        self._load_newest()
        self.set_timer(0.2, self._still_loading)

    def _still_loading(self) -> None:
        if self.querying:
            what = "searching" if self.filters.text else "loading"
            self._show_state(f"{what} {self.filters.describe()}…", error=False)

    @work(exclusive=True, group="live-page")
    async def _load_newest(self) -> None:
        self.generation += 1
        self.workers.cancel_group(self, "live-more")
        reader = self.console.reader
        try:
            top = await asyncio.to_thread(reader.last_rowid)
            page = await asyncio.to_thread(reader.page, self.filters, None, PAGE)
        except DlpError as exc:
            self.querying = False
            self._show_state(f"error: {exc}")
            self.loaded.set()
            return
        self.querying = False
        self.last_rowid, self.pending, self.rows = top, 0, []
        table = self.query_one("#events", DataTable)
        table.clear()
        self._take(page)
        table.move_cursor(row=0)
        self.call_after_refresh(self._painted)

    def _painted(self) -> None:
        """The new page is on screen: only now move focus back (the footer redraws for it)."""
        self.painted_at = time.perf_counter()
        if self.focus_table:
            self.focus_table = False
            self.query_one("#events", DataTable).focus()
        self.loaded.set()

    @work(exclusive=True, group="live-more")
    async def more(self) -> None:
        """The next (older) page, from where the last one ended."""
        if self.next_cursor is None:
            return
        generation = self.generation
        try:
            page = await asyncio.to_thread(
                self.console.reader.page, self.filters, self.next_cursor, PAGE
            )
        except DlpError as exc:
            self._show_state(f"error: {exc}")
            return
        if generation == self.generation:  # not for a filter that has been replaced
            self._take(page)

    def _take(self, page: Page) -> None:
        """Append a page; a word search that stopped early to show its hits goes on."""
        self._append(page.rows)
        self.next_cursor = page.next
        self.exhausted = page.next is None
        going_on = page.searched_to is not None and len(self.rows) < PAGE
        self.searched_to = page.searched_to if going_on else None
        self._show_state()
        if going_on:
            self.call_later(self.more)

    async def poll(self) -> None:
        """New rows since the last look: shown at once at the top, counted when paused."""
        if not self.loaded.is_set():
            return
        try:
            rows = await asyncio.to_thread(self.console.reader.newer, self.filters, self.last_rowid)
        except DlpError as exc:
            self._show_state(f"error: {exc}")
            return
        if not rows:
            return
        self.last_rowid = rows[-1].rowid
        at_top = self.query_one("#events", DataTable).cursor_row < 3
        if self.paused or not at_top:
            self.pending += len(rows)
            self._show_state()
        else:
            self.reload()

    def _append(self, rows: list[Row]) -> None:
        table = self.query_one("#events", DataTable)
        seen = {r.id for r in self.rows[-PAGE:]}
        for row in rows:
            if row.id in seen:
                continue
            self.rows.append(row)
            table.add_row(
                when(row.ts), row.user or "-", row.service or "-", action_text(row.action),
                VERDICT_MARK.get(row.verdict, ""), row.categories.replace(",", " ") or "-",
                key=row.id,
            )  # fmt: skip

    def _show_state(self, message: str = "", error: bool = True) -> None:
        self.message = message
        if message:
            text = Text(message, style="bold red" if error else "yellow")
        else:
            mode = Text("PAUSED", style="bold yellow") if self.paused else Text("LIVE", "green")
            more = "" if self.exhausted else "+"
            text = Text.assemble(
                mode, f" · {self.filters.describe()} · {len(self.rows)}{more} rows"
            )
            if self.searched_to is not None:
                text.append(f" · searching, back to {when(self.searched_to)}…", style="yellow")
            if self.pending:
                text.append(f" · {self.pending} new (g: show)", style="bold")
        self.query_one("#state", Static).update(text)

    # -- keys ------------------------------------------------------------------------------
    @on(Input.Submitted, "#filter")
    def apply_filter(self, event: Input.Submitted) -> None:
        self.focus_table = self.apply_query(event.value)

    def apply_query(self, query: str) -> bool:
        """Parse and apply a filter; a bad one is explained in the state line."""
        try:
            self.filters = parse_filters(query)
        except DlpError as exc:
            self._show_state(str(exc))
            return False
        self.reload()
        return True

    @on(DataTable.RowHighlighted, "#events")
    def near_end(self, event: DataTable.RowHighlighted) -> None:
        if event.cursor_row >= len(self.rows) - 10:
            self.more()

    @on(DataTable.RowSelected, "#events")
    def selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.console.open_incident(event.row_key.value)

    def action_open(self) -> None:
        table = self.query_one("#events", DataTable)
        if self.rows and 0 <= table.cursor_row < len(self.rows):
            self.console.open_incident(self.rows[table.cursor_row].id)

    def action_search(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_leave_input(self) -> None:
        self.query_one("#events", DataTable).focus()

    def action_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused and self.pending:
            self.reload()
        self._show_state()

    def action_last(self) -> None:
        """To the last row loaded; reaching it loads the next older page."""
        self.query_one("#events", DataTable).action_scroll_bottom()

    def action_newest(self) -> None:
        self.reload()

    def action_clear(self) -> None:
        self.query_one("#filter", Input).value = ""
        self.apply_query("")

    def action_by_user(self) -> None:
        table = self.query_one("#events", DataTable)
        if self.rows and 0 <= table.cursor_row < len(self.rows):
            user = self.rows[table.cursor_row].user
            query = f"user:{user}" if user and " " not in user else ""
            self.query_one("#filter", Input).value = query
            self.apply_query(query)

    def refresh_marks(self) -> None:
        """After a review mark on the Incident screen: the mark column, reloaded in place."""
        self.reload()
