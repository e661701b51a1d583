"""Start-up objects frozen out of the collector's full walks (the servers call this when up)."""

from __future__ import annotations

import gc

from dlpproxy.heap import freeze_startup_heap


def test_freezing_takes_the_live_objects_out_of_full_collections() -> None:
    kept = [{"n": n} for n in range(10_000)]  # start-up data that lives as long as the server
    try:
        frozen = freeze_startup_heap()
        assert frozen == gc.get_freeze_count() >= len(kept)
        assert len(gc.get_objects()) < frozen  # a full collection walks the rest only
        garbage: list[object] = []
        garbage.append(garbage)  # a cycle made after start-up is still collected
        del garbage
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0 and kept
