"""CPU of the local-model client per streamed answer (`LocalModel.chat_stream`), alone.

    .venv/bin/python bench/localmodel_client.py [--streams 200] [--profile]

Starts the tiny test model (bench/localmodel_server.py), then reads `--streams` short streamed
answers (about 9 SSE chunks each) one after the other and prints this process's CPU time (user +
system) and wall time per answer: what the gateway and the proxy's reroute spend in the client.
`--profile` adds a cProfile of one more round.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import resource
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.localmodel_server import local_model_server
from dlpproxy.localmodel.client import LocalModel
from dlpproxy.localmodel.config import LocalModelConfig

BODY = {"messages": [{"role": "user", "content": "say hello"}], "temperature": 0}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _round(model: LocalModel, streams: int) -> tuple[float, float, float]:
    """CPU ms, wall ms and chunks per answer over `streams` answers."""
    cpu, wall, chunks = _cpu(), time.perf_counter(), 0
    for _ in range(streams):
        async for _chunk in model.chat_stream(BODY):
            chunks += 1
    per = 1000.0 / streams
    return (_cpu() - cpu) * per, (time.perf_counter() - wall) * per, chunks / streams


async def _measure(base_url: str, streams: int, profile: bool) -> None:
    model = LocalModel(LocalModelConfig(name="company", base_url=base_url, model="tiny"))
    try:
        await _round(model, 20)  # warm-up: connection, server caches
        cpu, wall, chunks = await _round(model, streams)
        print(f"client CPU {cpu:.2f} ms per answer, wall {wall:.2f} ms, {chunks:.1f} chunks")
        if profile:
            prof = cProfile.Profile()
            prof.enable()
            await _round(model, streams)
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    finally:
        await model.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    with local_model_server() as server:
        asyncio.run(_measure(server.base_url, args.streams, args.profile))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
