"""`dlpproxy ca export`: write the proxy's CA certificate (PEM and DER) for MDM/GPO roll-out."""

from __future__ import annotations

import argparse
from pathlib import Path

from dlpproxy.settings import default_ca_dir

HELP = "export the proxy's CA certificate (PEM and DER)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="ca_command", metavar="ACTION", required=True)
    export = sub.add_parser("export", help="write dlpproxy-ca.pem and dlpproxy-ca.der")
    export.add_argument("--ca-dir", type=Path, default=default_ca_dir(), help="CA folder")
    export.add_argument("--out", type=Path, default=Path("."), help="output folder")


def run(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.serialization import Encoding
    from mitmproxy.certs import CertStore

    args.ca_dir.mkdir(parents=True, exist_ok=True)
    store = CertStore.from_store(str(args.ca_dir), "mitmproxy", 2048)
    args.out.mkdir(parents=True, exist_ok=True)
    cert = store.default_ca._cert
    pem, der = args.out / "dlpproxy-ca.pem", args.out / "dlpproxy-ca.der"
    pem.write_bytes(cert.public_bytes(Encoding.PEM))
    der.write_bytes(cert.public_bytes(Encoding.DER))
    print(f"wrote {pem} and {der} (CA in {args.ca_dir})")
    return 0
