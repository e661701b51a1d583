"""The Status screen: proxy heartbeats, classifier device and scan latency, local model health."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

import yaml
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Footer, Static

from dlpproxy.audit.store import HEARTBEAT_EVERY_S
from dlpproxy.errors import DlpError
from dlpproxy.tui.base import ConsoleScreen, age, when

STALE_AFTER_S = 3 * HEARTBEAT_EVERY_S


def local_models(policy_path: Path) -> dict[str, str]:
    """Local models named in the policy (`local_models:`), name -> base URL; {} when none."""
    try:
        data = yaml.safe_load(policy_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    models = data.get("local_models") if isinstance(data, dict) else None
    if not isinstance(models, dict):
        return {}
    return {
        str(name): str(conf.get("base_url", "")) if isinstance(conf, dict) else ""
        for name, conf in models.items()
    }


class StatusScreen(ConsoleScreen):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "refresh", "Refresh")]
    DEFAULT_CSS = """
    StatusScreen #status { height: 1fr; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        yield from self.too_small()
        with Vertical(classes="body"):
            yield self.title_bar("status")
            yield Static("loading…", id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.load()
        self.set_interval(HEARTBEAT_EVERY_S, self.load)

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.load()

    def action_refresh(self) -> None:
        self.load()

    @work(exclusive=True, group="status")
    async def load(self) -> None:
        reader, now = self.console.reader, self.console.now()
        try:
            beats = await asyncio.to_thread(reader.heartbeats)
            recent = await asyncio.to_thread(reader.dashboard, now - 300.0, now + 1.0, 1)
        except DlpError as exc:
            self.query_one("#status", Static).update(Text(str(exc), style="bold red"))
            return
        text = Text()
        _proxies(text, beats, now)
        text.append("\nscan latency, last 5 min: ", style="bold")
        if recent.latency_sample:
            text.append(f"p50 {recent.p50_ms:.1f} ms · p99 {recent.p99_ms:.1f} ms "
                        f"over {recent.latency_sample:,} events\n")  # fmt: skip
        else:
            text.append("no events\n", style="dim")
        _models(text, local_models(self.console.policy.path), beats)
        _files(text, self.console)
        self.query_one("#status", Static).update(text)


def _proxies(text: Text, beats: list[dict[str, Any]], now: float) -> None:
    text.append("proxies\n", style="bold")
    if not beats:
        note = "  no heartbeat: no proxy has written to this store since heartbeats were added\n"
        text.append(note, style="yellow")
    for b in beats[:4]:
        st = b["status"]
        seen = now - float(b["last_seen"] or 0)
        if b["state"] == "stopped":
            state = Text("stopped", style="dim")
        elif seen > STALE_AFTER_S:
            state = Text("no heartbeat", style="bold red")
        else:
            state = Text("alive", style="bold green")
        device = st.get("classifier_device") or "not loaded"
        text.append(f"  {b['id']}  ")
        text.append_text(state)
        text.append(f"  seen {age(seen)} ago · up since {when(float(b['started']))} · "
                    f"v{b['version']}\n")  # fmt: skip
        text.append(f"    detectors {','.join(st.get('detectors') or []) or '-'} · classifier "
                    f"{device.upper() if device in ('cpu', 'cuda') else device}")  # fmt: skip
        timing = (st.get("detector_ms") or {}).get("classifier")
        if isinstance(timing, dict) and "p50" in timing:
            text.append(f" p50 {timing['p50']:.1f} ms p99 {timing.get('p99', 0):.1f} ms")
        if st.get("undelivered"):
            text.append(f" · {st['undelivered']} events undelivered", style="bold red")
        if st.get("policy_error"):
            text.append(f"\n    policy: {st['policy_error']}", style="red")
        text.append("\n")


def _models(text: Text, configured: dict[str, str], beats: list[dict[str, Any]]) -> None:
    text.append("local models: ", style="bold")
    if not configured:
        text.append("not configured (no local_models section in the policy)\n", style="dim")
        return
    text.append("\n")
    health: dict[str, Any] = next((b["status"].get("local_models") for b in beats
                   if isinstance(b["status"].get("local_models"), dict)), {}) or {}  # fmt: skip
    for name, url in configured.items():
        state = str(health.get(name, "unknown (no report from a proxy)"))
        style = "green" if state == "ok" else "yellow" if state.startswith("unknown") else "red"
        text.append(f"  {name} {url} ")
        text.append(state + "\n", style=style)


def _files(text: Text, console: Any) -> None:
    db: Path = console.reader.path
    text.append("\naudit store ", style="bold")
    text.append(f"{db}\n")
    spill = db.with_name(db.name + ".undelivered.jsonl")
    if spill.exists():
        text.append(f"  {spill} holds events the store refused\n", style="bold red")
    text.append("policy ", style="bold")
    text.append(f"{console.policy.path}")
    if console.policy.error:
        text.append(f"\n  {console.policy.error}", style="red")
    text.append("\n")
