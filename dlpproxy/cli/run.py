"""`dlpproxy run`: start the forward proxy (mitmproxy with the dlpproxy addon)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dlpproxy.settings import Settings, default_audit_db, default_ca_dir

HELP = "run the forward proxy that inspects AI traffic"
ADDON = Path(__file__).resolve().parent.parent / "proxy" / "addon.py"


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


def mitmdump_args(args: argparse.Namespace) -> list[str]:
    """The mitmdump command line for these arguments (also used by the tests)."""
    argv = [
        "--listen-host", args.host, "--listen-port", str(args.port), "-s", str(ADDON),
        "--set", f"confdir={args.ca_dir}", "--set", f"dlp_policy={args.policy}",
        "--set", f"dlp_rules={args.rules}", "--set", f"dlp_audit_db={args.audit_db}",
        "--set", f"dlp_services={args.rules / 'ai-services.yaml'}",
        "--set", f"dlp_users={args.rules / 'users.yaml'}",
        "--set", f"dlp_retention_days={args.retention_days}",
        "--set", "flow_detail=0",
    ]  # fmt: skip
    if args.upstream:
        argv += ["--mode", f"upstream:{args.upstream}"]
    if args.detectors:
        argv += ["--set", f"dlp_detectors={args.detectors}"]
    if args.identity_header:
        argv += ["--set", f"dlp_identity_header={args.identity_header}"]
    if args.proxyauth:
        argv += ["--proxyauth", args.proxyauth]
    if args.ssl_insecure:
        argv += ["--ssl-insecure"]
    for item in args.set:
        argv += ["--set", item]
    return argv


def run(args: argparse.Namespace) -> int:
    from mitmproxy.tools.main import mitmdump

    args.ca_dir.mkdir(parents=True, exist_ok=True)
    where = f"{args.host}:{args.port}"
    print(f"dlpproxy: listening on {where}; CA in {args.ca_dir}; audit {args.audit_db}")
    mitmdump(mitmdump_args(args))
    return 0
