"""IdleWatch (dlpproxy/localmodel/idle.py): the gap allowed between two chunks of a stream, with
one timer per stream. Real event loops and real sleeps (tenths of a second)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Sequence

import pytest

from dlpproxy.localmodel.idle import IdleWatch


def run[T](coro: Awaitable[T]) -> T:
    async def main() -> T:
        async with asyncio.timeout(20):
            return await coro

    return asyncio.run(main())


async def paced(gaps: Sequence[float]) -> AsyncIterator[int]:
    """Items 0, 1, ... each after its gap in seconds."""
    for i, gap in enumerate(gaps):
        await asyncio.sleep(gap)
        yield i


async def drain(watch: IdleWatch, items: AsyncIterator[int], hold: float = 0.0) -> list[int]:
    """Every item through the watch; `hold` seconds of the consumer's own work after each."""
    got = []
    try:
        while (item := await watch.next(items)) is not None:
            got.append(item)
            await asyncio.sleep(hold)
    finally:
        watch.close()
    return got


def test_items_that_keep_coming_within_the_gap_all_arrive() -> None:
    async def scenario() -> list[int]:
        # together far longer than the gap, each well within it: only the gap counts
        return await drain(IdleWatch(0.25), paced([0.1] * 6))

    assert run(scenario()) == [0, 1, 2, 3, 4, 5]


def test_a_gap_longer_than_allowed_is_a_timeout_error_at_about_that_time() -> None:
    async def scenario() -> tuple[list[int], float]:
        got: list[int] = []
        watch = IdleWatch(0.2)
        items = paced([0.0, 0.05, 5.0])
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            while (item := await watch.next(items)) is not None:
                got.append(item)
                start = time.monotonic()
        watch.close()
        return got, time.monotonic() - start

    got, waited = run(scenario())
    assert got == [0, 1]
    assert 0.15 <= waited < 1.0


def test_the_consumers_own_time_between_items_does_not_count() -> None:
    async def scenario() -> list[int]:
        # the consumer holds each item 0.3 s, longer than the 0.2 s gap, the items come at once
        return await drain(IdleWatch(0.2), paced([0.0, 0.0, 0.0]), hold=0.3)

    assert run(scenario()) == [0, 1, 2]


def test_a_timer_set_for_an_earlier_wait_is_moved_to_the_current_one() -> None:
    async def scenario() -> list[int]:
        # the one timer is set at the first wait; later waits begin after it would have fired
        return await drain(IdleWatch(0.2), paced([0.15, 0.15, 0.15, 0.15]), hold=0.04)

    assert run(scenario()) == [0, 1, 2, 3]


def test_waits_from_different_tasks_are_each_timed() -> None:
    async def scenario() -> tuple[int | None, type[BaseException]]:
        watch = IdleWatch(0.2)
        items = paced([0.0, 5.0])
        first = await asyncio.create_task(watch.next(items))  # as the gateway's request task
        second = asyncio.create_task(watch.next(items))  # and its connection task
        outcome = await asyncio.gather(second, return_exceptions=True)
        watch.close()
        assert isinstance(outcome[0], BaseException)
        return first, type(outcome[0])

    assert run(scenario()) == (0, TimeoutError)


def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    async def scenario() -> bool:
        watch = IdleWatch(5.0)
        waiting = asyncio.create_task(watch.next(paced([10.0])))
        await asyncio.sleep(0.05)
        waiting.cancel()
        try:
            await waiting
        except asyncio.CancelledError:
            return True
        finally:
            watch.close()
        return False

    assert run(scenario()) is True


def test_close_stops_the_timer() -> None:
    async def scenario() -> int:
        loop = asyncio.get_running_loop()
        watch = IdleWatch(30.0)
        assert await watch.next(paced([0.0])) == 0
        before = len(loop._scheduled)  # type: ignore[attr-defined]
        watch.close()
        await asyncio.sleep(0)
        live = [h for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]
        return before - len(live)

    assert run(scenario()) == 1
