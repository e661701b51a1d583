"""`dlpproxy tui`: the terminal admin console over the audit store and the policy file."""

from __future__ import annotations

import argparse
from pathlib import Path

from dlpproxy.settings import Settings, default_audit_db

HELP = "terminal admin console over the audit store and the policy"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", type=Path, default=None, help=f"audit store (default: {default_audit_db()})"
    )
    parser.add_argument(
        "--policy", type=Path, default=None, help="policy file (default: rules/policy.yaml)"
    )
    parser.add_argument(
        "--poll", type=float, default=1.0, help="seconds between looks for new events (default 1)"
    )


def run(args: argparse.Namespace) -> int:
    from dlpproxy.tui.app import DlpTui  # textual is imported only when the console runs

    policy = args.policy or Settings().rules_dir / "policy.yaml"
    app = DlpTui(args.db or default_audit_db(), policy, poll_s=max(0.2, args.poll))
    app.run()
    return int(app.return_code or 0)  # textual sets 1 when the app stopped on an error
