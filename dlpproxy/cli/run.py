"""`dlpproxy run`: start the forward proxy (mitmproxy with the dlpproxy addon)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dlpproxy.settings import Settings, default_audit_db, default_ca_dir

HELP = "run the forward proxy that inspects AI traffic"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    rules = Settings().rules_dir
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="listen port (default %(default)s)")
    parser.add_argument("--policy", type=Path, default=rules / "policy.yaml", help="policy file")
    parser.add_argument("--rules", type=Path, default=rules, help="rule-pack folder")
    parser.add_argument("--audit-db", type=Path, default=default_audit_db(), help="audit store")
    parser.add_argument(
        "--retention-days", type=int, default=0, help="delete audit events older (0: keep all)"
    )
    parser.add_argument("--ca-dir", type=Path, default=default_ca_dir(), help="CA folder")
    parser.add_argument("--upstream", help="upstream proxy URL (http://host:port)")
    parser.add_argument("--detectors", help="detectors, comma-separated (default set)")
    parser.add_argument("--identity-header", default="", help="trusted user header")
    parser.add_argument(
        "--proxyauth", help="mitmproxy proxy auth: @htpasswd-file, ldap:..., user:pass"
    )
    parser.add_argument("--ssl-insecure", action="store_true", help="do not verify upstream TLS")
    parser.add_argument(
        "--set", action="append", default=[], metavar="OPTION=VALUE", help="any mitmproxy option"
    )
    parser.add_argument(
        "--mitmproxy-addons", choices=("lean", "all"), default="lean",
        help="mitmproxy's addons: only those a DLP proxy needs (default), or all of mitmdump's"
        " (flow saving, replay, map local/remote, ...)",
    )  # fmt: skip


def proxy_options(args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    """mitmproxy and dlpproxy option values for these arguments, and the `--set` items (which
    mitmproxy applies last)."""
    settings: dict[str, Any] = {
        "listen_host": args.host, "listen_port": args.port, "confdir": str(args.ca_dir),
        "dlp_policy": str(args.policy), "dlp_rules": str(args.rules),
        "dlp_audit_db": str(args.audit_db), "dlp_services": str(args.rules / "ai-services.yaml"),
        "dlp_users": str(args.rules / "users.yaml"),
        "dlp_retention_days": str(args.retention_days),
    }  # fmt: skip
    if args.mitmproxy_addons == "all":
        settings["flow_detail"] = 0  # mitmdump's flow printer: the audit store has the flows
    if args.upstream:
        settings["mode"] = [f"upstream:{args.upstream}"]
    if args.detectors:
        settings["dlp_detectors"] = args.detectors
    if args.identity_header:
        settings["dlp_identity_header"] = args.identity_header
    if args.proxyauth:
        settings["proxyauth"] = args.proxyauth
    if args.ssl_insecure:
        settings["ssl_insecure"] = True
    return settings, list(args.set)


def run(args: argparse.Namespace) -> int:
    from mitmproxy.exceptions import OptionsError

    from dlpproxy.proxy.addon import DlpAddon
    from dlpproxy.proxy.master import run_master

    args.ca_dir.mkdir(parents=True, exist_ok=True)
    where = f"{args.host}:{args.port}"
    print(f"dlpproxy: listening on {where}; CA in {args.ca_dir}; audit {args.audit_db}")
    settings, sets = proxy_options(args)
    try:
        run_master(settings, sets, args.mitmproxy_addons, lambda: [DlpAddon()])
    except OptionsError as exc:
        print(f"dlpproxy run: {exc}", file=sys.stderr)
        return 2
    return 0
