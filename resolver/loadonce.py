"""A bounded cache whose values are loaded once per key, however many threads ask at once.

WHY: a version's manifest index is expensive to load (a fetch, maybe a build over a big
manifest) and is asked for by many threads at the same moment (a loader's workers opening
files of one version, a page's parallel requests). The mount's catalog and the web page both
keep a few hundred of them open (least recently used out, closed on the way out) and let the
first caller load a missing one while the others wait for it instead of loading it again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LoadOnceCache(Generic[K, V]):
    """At most `limit` values; `evict(value)` is called for each one pushed out or cleared."""

    def __init__(self, limit: int, evict: Callable[[V], None] = lambda value: None) -> None:
        self.limit = limit
        self._evict = evict
        self._lock = threading.Lock()
        self._values: OrderedDict[K, V] = OrderedDict()
        self._loading: dict[K, threading.Lock] = {}

    def get(self, key: K, load: Callable[[], V]) -> V:
        """The value for `key`, loaded by `load()` if missing (its exceptions propagate; the
        next caller tries again)."""
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:  # one loader per key; the others wait for it rather than load again
            with self._lock:
                if key in self._values:
                    return self._values[key]
            value = load()
            with self._lock:
                self._values[key] = value
                self._loading.pop(key, None)  # later callers find the value
                out = []
                while len(self._values) > self.limit:
                    out.append(self._values.popitem(last=False)[1])
        for old in out:
            self._evict(old)
        return value

    def clear(self) -> None:
        with self._lock:
            out = list(self._values.values())
            self._values.clear()
        for old in out:
            self._evict(old)
