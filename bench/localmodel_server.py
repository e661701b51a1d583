"""The tiny local model for benchmarks: llama-cpp-python's server on 127.0.0.1 serving the GGUF
model that tests/support/tiny_gguf.py writes offline (the same server the tests use).

    with local_model_server() as server:      # in a benchmark
        ...server.base_url...                 # http://127.0.0.1:<port>/v1, model "tiny"

    .venv/bin/python bench/localmodel_server.py [--port 8080] [--threads 1]   # by hand, Ctrl-C

Needs the `localmodel` extra (`make test` installs it). Answers are 2 to 8 tokens of plain
words ending in end-of-sequence; the server runs one request at a time.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.local_model import (  # noqa: E402
    LocalModelServer,
    LocalModelServerError,
    running_local_model,
)


@contextlib.contextmanager
def local_model_server(
    folder: Path | None = None, port: int | None = None, threads: int = 1
) -> Iterator[LocalModelServer]:
    """Start the tiny model's server (in `folder`, or a temporary one); stop it on exit."""
    with running_local_model(folder, port=port, threads=threads) as server:
        yield server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads (default 1)")
    args = parser.parse_args(argv)
    try:
        with local_model_server(port=args.port, threads=args.threads) as server:
            where = f"{server.base_url} (pid {server.pid})"
            print(f"local model {server.model!r} at {where}; Ctrl-C stops", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
    except LocalModelServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
