"""The Dashboard: counts per action and category over a time window, top lists, latency, noise."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Label, Sparkline, Static

from dlpproxy.errors import DlpError
from dlpproxy.policy import ACTIONS
from dlpproxy.tui.base import ACTION_STYLE, ConsoleScreen
from dlpproxy.tui.queries import Dashboard

WINDOWS = (("1 h", 3600.0), ("24 h", 86400.0), ("7 d", 7 * 86400.0), ("30 d", 30 * 86400.0))
CATEGORY_SLOTS = 5
SHOWN_ACTIONS = tuple(reversed(ACTIONS))  # block first


class SeriesRow(Horizontal):
    """`name ▁▂▇▃ count` on one line."""

    DEFAULT_CSS = """
    SeriesRow { height: 1; }
    SeriesRow .name { width: 13; }
    SeriesRow Sparkline { width: 1fr; }
    SeriesRow .count { width: 8; text-align: right; }
    """

    def __init__(self, slot: str, style: str = ""):
        super().__init__(id=slot)
        self.style_name = style

    def compose(self) -> ComposeResult:
        yield Label("", classes="name")
        yield Sparkline([], summary_function=max)
        yield Label("", classes="count")

    def show(self, name: str, series: list[int]) -> None:
        self.display = bool(name)
        self.query_one(".name", Label).update(Text(name[:12], style=self.style_name))
        self.query_one(Sparkline).data = series if any(series) else []
        self.query_one(".count", Label).update(f"{sum(series):,}")


class DashboardScreen(ConsoleScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("w", "window", "Window"),
        Binding("r", "refresh", "Refresh"),
    ]
    DEFAULT_CSS = """
    DashboardScreen #totals { height: 2; padding: 0 1; }
    DashboardScreen .columns { height: auto; }
    DashboardScreen .column { width: 1fr; height: auto; padding: 0 1; }
    DashboardScreen .heading { height: 1; text-style: bold; }
    DashboardScreen .list { height: auto; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.window = 1
        self.data: Dashboard | None = None

    def compose(self) -> ComposeResult:
        yield from self.too_small()
        with Vertical(classes="body"):
            yield self.title_bar("dashboard")
            yield Static("loading…", id="totals")
            with Horizontal(classes="columns"):
                with Vertical(classes="column"):
                    yield Label("actions over time", classes="heading")
                    for action in SHOWN_ACTIONS:
                        yield SeriesRow(f"action-{action}", ACTION_STYLE[action])
                with Vertical(classes="column"):
                    yield Label("categories over time", classes="heading")
                    for i in range(CATEGORY_SLOTS):
                        yield SeriesRow(f"category-{i}")
            with Horizontal(classes="columns"):
                for slot, heading in (("users", "top users (incidents)"),
                                      ("services", "top services (events)"),
                                      ("marks", "false pos./reviewed")):  # fmt: skip
                    with Vertical(classes="column"):
                        yield Label(heading, classes="heading")
                        yield Static("", id=slot, classes="list")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        if self.data is not None:
            self.load()

    @work(exclusive=True, group="dashboard")
    async def load(self) -> None:
        label, span = WINDOWS[self.window]
        until = self.console.now()
        try:
            data = await asyncio.to_thread(self.console.reader.dashboard, until - span, until)
        except DlpError as exc:
            self.query_one("#totals", Static).update(Text(str(exc), style="bold red"))
            return
        self.data = data
        self._render_data(label, data)

    def _render_data(self, label: str, d: Dashboard) -> None:
        per = " · ".join(f"{a} {d.per_action[a]:,}" for a in SHOWN_ACTIONS if d.per_action.get(a))
        self.query_one("#totals", Static).update(Text.assemble(
            ("last ", "dim"), (label, "bold"), f" · {d.total:,} events · ",
            ("block rate ", "dim"), (f"{d.block_rate:.1%}", "bold red"),
            (" · scan p50 ", "dim"), f"{d.p50_ms:.1f} ms", (" p99 ", "dim"), f"{d.p99_ms:.1f} ms",
            "\n", per or "no events in this window",
            (f" · latency of the newest {d.latency_sample:,}" if d.latency_sample else "", "dim"),
        ))  # fmt: skip
        for action in SHOWN_ACTIONS:
            series = d.action_series.get(action, [])
            self.query_one(f"#action-{action}", SeriesRow).show(action, series)
        for i in range(CATEGORY_SLOTS):
            name, _ = d.per_category[i] if i < len(d.per_category) else ("", 0)
            row = self.query_one(f"#category-{i}", SeriesRow)
            row.show(name, d.category_series.get(name, []))
        self._list("users", [(u or "-", f"{n:,}") for u, n in d.top_users])
        self._list("services", [(s or "-", f"{n:,}") for s, n in d.top_services])
        self._list("marks", [(r, f"{fp}/{rv}") for r, fp, rv in d.marks_per_rule])

    def _list(self, slot: str, rows: list[tuple[str, str]]) -> None:
        text = Text()
        for name, count in rows:
            text.append(f"{name[:15]:<15} {count:>7}\n")
        self.query_one(f"#{slot}", Static).update(text if rows else Text("none", style="dim"))

    def action_window(self) -> None:
        self.window = (self.window + 1) % len(WINDOWS)
        self.query_one("#totals", Static).update("loading…")
        self.load()

    def action_refresh(self) -> None:
        self.load()
