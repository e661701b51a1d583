"""`dlpproxy` — one command with subcommands.

Each subcommand is a module in this package with `HELP` (one line), `add_arguments(parser)` and
`run(args) -> int` (the exit status). Adding a subcommand is adding one module and one line here.
Modules are imported only when their subcommand runs, so `dlpproxy scan` never imports mitmproxy.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from dlpproxy import __version__
from dlpproxy.errors import DlpError

# subcommand -> module (imported lazily) ; help lines live in the modules but are repeated here so
# `dlpproxy --help` does not import every module.
COMMANDS: dict[str, tuple[str, str]] = {
    "scan": ("dlpproxy.cli.scan", "scan text or JSON lines for secrets, personal data, markings"),
    "run": ("dlpproxy.cli.run", "run the forward proxy that inspects AI traffic"),
    "ca": ("dlpproxy.cli.ca", "export the proxy's CA certificate (PEM and DER)"),
    "audit": ("dlpproxy.cli.audit", "read the audit store: tail, export (jsonl|cef), prune"),
    "train": ("dlpproxy.cli.train", "train the ONNX content classifier from labelled JSON lines"),
    "gateway": ("dlpproxy.cli.gateway", "run the OpenAI/Anthropic-compatible local-model gateway"),
    "tui": ("dlpproxy.cli.tui", "terminal admin console over the audit store and the policy"),
    "index": ("dlpproxy.cli.index", "fingerprint index of the company's code and documents"),
}


def _parser(argv: Sequence[str]) -> tuple[argparse.ArgumentParser, argparse.Namespace | None]:
    parser = argparse.ArgumentParser(prog="dlpproxy", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"dlpproxy {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_line) in COMMANDS.items():
        p = sub.add_parser(name, help=help_line, description=help_line)
        if name == chosen:
            importlib.import_module(module_name).add_arguments(p)
    return parser, None


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    parser, _ = _parser(args_in)
    args = parser.parse_args(args_in)
    if not args.command:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args))
    except DlpError as exc:
        print(f"dlpproxy {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head`: stop quietly
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
