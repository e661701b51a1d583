"""A file-backed value reloaded when its file changes; a broken edit keeps the previous value.

`current()` is cheap (one stat call at most every `check_every` seconds), so servers call it per
request. `error` holds why the last reload was refused, for logs and the admin console. The
proxy's and the gateway's policy and the gateway's configuration are held this way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from dlpproxy.errors import DlpError


class WatchedFile[T]:
    """`load(path)` now (its DlpError propagates: nothing to fall back on), and again whenever
    the file's modification time or size moves."""

    kind = "file"  # what the value is, in `error`: "kept the previous {kind}: ..."

    def __init__(self, path: Path, load: Callable[[Path], T], check_every: float = 1.0):
        self.path = path
        self.check_every = check_every
        self._load = load
        self.value: T = load(path)
        self.error: str = ""
        self._stamp = self._mtime()
        self._checked = time.monotonic()

    def current(self) -> T:
        now = time.monotonic()
        if now - self._checked >= self.check_every:
            self._checked = now
            self.reload_if_changed()
        return self.value

    def reload_if_changed(self) -> bool:
        """Reload when the file's stamp moved; True when a new value took effect."""
        stamp = self._mtime()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            self.value = self._load(self.path)
        except DlpError as exc:
            self.error = f"kept the previous {self.kind}: {exc}"
            return False
        self.error = ""
        return True

    def _mtime(self) -> tuple[int, int]:
        try:
            st = self.path.stat()
        except OSError:
            return (0, 0)
        return (st.st_mtime_ns, st.st_size)
