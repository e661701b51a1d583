"""The mitmproxy master that `dlpproxy run` starts: mitmproxy's proxy core, our addon, and only
the mitmproxy addons a forward DLP proxy needs.

mitmdump loads some 35 addons (flow saving, replay, map local/remote, body and header
rewriting, sticky cookies, the mitm.it onboarding app, ...) and runs every hook of every request
through each of them: about 270 addon calls per proxied request, about a quarter of mitmproxy's CPU
per request here. A DLP proxy uses none of those features, and two of them (saving flows to a
file, HAR export) would write raw prompts to disk, which dlpproxy must never do. The lean set keeps
the proxy (modes, upstream proxies and their auth, TLS, HTTP/2, WebSockets, DNS), proxy
authentication, the public-client block, script loading (`--set scripts=...`) and the start-up
error check. `--mitmproxy-addons all` loads mitmdump's full set instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Sequence
from typing import Any

from mitmproxy import addons, hooks, master, optmanager
from mitmproxy.addons import (
    block,
    core,
    disable_h2c,
    dns_resolver,
    dumper,
    errorcheck,
    keepserving,
    next_layer,
    proxyauth,
    proxyserver,
    readfile,
    script,
    strip_dns_https_records,
    tlsconfig,
    update_alt_svc,
    upstream_auth,
)
from mitmproxy.exceptions import OptionsError
from mitmproxy.options import Options

ADDON_SETS = ("lean", "all")


def lean_addons() -> list[Any]:
    """mitmproxy's addons that the forward DLP proxy keeps (see the module's docstring)."""
    return [
        core.Core(),
        block.Block(),
        strip_dns_https_records.StripDnsHttpsRecords(),
        disable_h2c.DisableH2C(),
        proxyauth.ProxyAuth(),
        proxyserver.Proxyserver(),
        script.ScriptLoader(),
        dns_resolver.DnsResolver(),
        next_layer.NextLayer(),
        tlsconfig.TlsConfig(),
        upstream_auth.UpstreamAuth(),
        update_alt_svc.UpdateAltSvc(),
    ]


def all_addons() -> list[Any]:
    """What mitmdump loads (its default addons, the flow printer, keep-serving, stdin flows)."""
    return [
        *addons.default_addons(),
        dumper.Dumper(),
        keepserving.KeepServing(),
        readfile.ReadFileStdin(),
    ]


class DlpMaster(master.Master):
    """mitmproxy's master with the chosen addon set and the start-up error check."""

    def __init__(self, opts: Options, addon_set: str):
        if addon_set not in ADDON_SETS:
            raise ValueError(f"mitmproxy addon set '{addon_set}': use one of {ADDON_SETS}")
        super().__init__(opts, with_termlog=True)
        self.addons.add(*(lean_addons() if addon_set == "lean" else all_addons()))
        self.addons.add(errorcheck.ErrorCheck())


def run_master(
    settings: dict[str, Any], sets: Sequence[str], addon_set: str,
    extra: Callable[[], Sequence[Any]],
) -> None:  # fmt: skip
    """Start the proxy and serve until SIGINT/SIGTERM; OptionsError for a bad option value.

    `settings`: option values by name; then the options in `confdir`'s config.yaml, as mitmdump
    reads them; then `sets`, "name=value" strings as mitmproxy's `--set` takes them. The `extra`
    addons (dlpproxy's) come last, once every value is known, so their options are applied in
    one update, then configured with no option named (their defaults stand): dlpproxy's addon
    builds its engine once, on whichever comes first.
    """

    async def main() -> None:
        logging.getLogger().setLevel(logging.DEBUG)  # termlog filters by termlog_verbosity
        for name in ("asyncio", "hpack", "quic"):
            logging.getLogger(name).setLevel(logging.WARNING)
        opts = Options()
        proxy = DlpMaster(opts, addon_set)
        opts.update_defer(**settings)
        optmanager.load_paths(
            opts,
            os.path.join(opts.confdir, "config.yaml"),
            os.path.join(opts.confdir, "config.yml"),
        )
        opts.set(*sets, defer=True)
        extras = extra()
        proxy.addons.add(*extras)  # their options: the deferred values, in one update
        if opts.deferred:
            raise OptionsError(f"unknown option(s): {', '.join(sorted(opts.deferred))}")
        for addon in extras:  # one configure even where every value was left at its default
            proxy.addons.invoke_addon_sync(addon, hooks.ConfigureHook(set()))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, proxy.shutdown)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # a client gone mid-write is not our end
        await proxy.run()

    asyncio.run(main())
