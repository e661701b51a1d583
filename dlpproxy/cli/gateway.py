"""`dlpproxy gateway`: the OpenAI/Anthropic-compatible endpoint, and minting its app keys."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from dlpproxy.errors import DlpError
from dlpproxy.settings import Settings, default_audit_db

HELP = "run the OpenAI/Anthropic-compatible local-model gateway"
DEFAULT_LISTEN = "127.0.0.1:8788"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    rules = Settings().rules_dir
    parser.add_argument(
        "--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT", help="default %(default)s"
    )
    parser.add_argument(
        "--config", type=Path, default=Path("gateway.yaml"), help="providers and app keys"
    )
    parser.add_argument("--policy", type=Path, default=rules / "policy.yaml", help="policy file")
    parser.add_argument("--audit-db", type=Path, default=default_audit_db(), help="audit store")
    parser.add_argument("--detectors", default="", help="detectors, comma-separated")
    parser.add_argument(
        "--new-key", metavar="APP", help="mint a key for APP: print it once, and its yaml line"
    )
    parser.add_argument("--groups", default="", help="with --new-key: the app's groups, g1,g2")
    parser.add_argument("--tls-cert", type=Path, help="serve HTTPS with this PEM certificate")
    parser.add_argument("--tls-key", type=Path, help="... and this PEM private key")


def parse_listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise DlpError(f"--listen '{text}' is not HOST:PORT")
    return host.strip("[]"), int(port)


def run(args: argparse.Namespace) -> int:
    if args.new_key:
        from dlpproxy.gateway.config import new_key

        groups = tuple(g.strip() for g in args.groups.split(",") if g.strip())
        key, line = new_key(args.new_key, groups)
        print(f"gateway key for {args.new_key} (shown once, store it in the app's secrets):")
        print(f"  {key}")
        print("add this line under 'keys:' in gateway.yaml (it holds only the key's hash):")
        print(line)
        return 0
    from dlpproxy.gateway.server import build_gateway, serve, tls_context

    host, port = parse_listen(args.listen)
    if (args.tls_cert is None) != (args.tls_key is None):
        raise DlpError("--tls-cert and --tls-key go together")
    tls = tls_context(args.tls_cert, args.tls_key) if args.tls_cert and args.tls_key else None
    scheme = "https" if tls else "http"
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request: the audit has them
    gateway = build_gateway(args.config, args.policy, args.audit_db, args.detectors)
    names = ", ".join(gateway.config.providers) or "none"

    def ready(server: object) -> None:
        bound = getattr(server, "port", port)
        print(
            f"dlpproxy gateway listening on {scheme}://{host}:{bound}/v1 (providers: {names}; "
            f"policy {args.policy}; audit {args.audit_db})",
            flush=True,
        )

    asyncio.run(serve(gateway, host, port, ready, tls=tls))
    return 0
