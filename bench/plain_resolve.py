"""mitmproxy addon for the plain-mitmproxy baseline in bench/proxy.py: send HOST's connections to
IP:PORT (the same mapping as dlpproxy's `dlp_resolve`) and inspect nothing, so that the only
difference between the two proxies is dlpproxy's inspection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mitmproxy import ctx, exceptions
from mitmproxy.proxy import server_hooks


class PlainResolve:
    def __init__(self) -> None:
        self.targets: dict[str, tuple[str, int]] = {}

    def load(self, loader: Any) -> None:
        loader.add_option("bench_resolve", Sequence[str], [], "HOST=IP:PORT: send HOST there")

    def configure(self, updated: set[str]) -> None:
        if "bench_resolve" not in updated:
            return
        targets = {}
        for spec in ctx.options.bench_resolve:
            host, _, target = spec.partition("=")
            ip, _, port = target.rpartition(":")
            if not host or not ip or not port.isdigit():
                raise exceptions.OptionsError(f"bench_resolve: '{spec}' is not HOST=IP:PORT")
            targets[host] = (ip, int(port))
        self.targets = targets

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        if data.server.address and data.server.address[0] in self.targets:
            data.server.address = self.targets[data.server.address[0]]


addons = [PlainResolve()]
