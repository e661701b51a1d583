"""Dynamic micro-batching: windows from concurrent callers share one model run.

A worker task collects queued items until it has `max_batch` of them or the oldest has waited
`max_wait_ms`, runs the model on the whole batch in a thread, and resolves every caller's future.
Under load the GPU sees full batches; a lone caller waits at most `max_wait_ms`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor


class MicroBatcher[Item, Out]:
    """Batches `submit()`ted items into calls of `run(items) -> outputs` (same order)."""

    def __init__(
        self, run: Callable[[Sequence[Item]], Sequence[Out]], max_batch: int, max_wait_ms: float
    ) -> None:
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError("max_batch must be >= 1 and max_wait_ms >= 0")
        self._run = run
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self._queue: asyncio.Queue[tuple[Item, asyncio.Future[Out]]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: asyncio.Task[None] | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="microbatch")
        self.batches = 0

    async def submit_many(self, items: Sequence[Item]) -> list[Out]:
        """Queue items and wait for their outputs."""
        queue = self._ensure_worker()
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Out]] = []
        for item in items:
            fut: asyncio.Future[Out] = loop.create_future()
            futures.append(fut)
            queue.put_nowait((item, fut))
        return list(await asyncio.gather(*futures))

    def _ensure_worker(self) -> asyncio.Queue[tuple[Item, asyncio.Future[Out]]]:
        """A worker runs while items wait and ends when the queue is empty, so no task outlives
        its callers; queue and worker belong to one event loop (a CLI may run several)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._queue is None:
            self._loop = loop
            self._queue = asyncio.Queue()
            self._worker = None
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._serve(self._queue))
        return self._queue

    async def _serve(self, queue: asyncio.Queue[tuple[Item, asyncio.Future[Out]]]) -> None:
        loop = asyncio.get_running_loop()
        while not queue.empty():
            batch = [queue.get_nowait()]
            deadline = time.monotonic() + self.max_wait
            while len(batch) < self.max_batch:
                if not queue.empty():
                    batch.append(queue.get_nowait())
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), left))
                except TimeoutError:
                    break
            await self._execute(loop, batch)

    async def _execute(
        self, loop: asyncio.AbstractEventLoop, batch: list[tuple[Item, asyncio.Future[Out]]]
    ) -> None:
        live = [(item, fut) for item, fut in batch if not fut.done()]
        if not live:
            return
        self.batches += 1
        try:
            outs = await loop.run_in_executor(self._pool, self._run, [item for item, _ in live])
        except Exception as exc:  # every waiting caller gets the model's failure
            for _, fut in live:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for (_, fut), out in zip(live, outs, strict=True):
            if not fut.done():
                fut.set_result(out)

    def close(self) -> None:
        if self._worker is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._worker.cancel)
        self._worker = None
        self._pool.shutdown(wait=False, cancel_futures=True)
