"""Errors of the watcher domain (API family + the internal ones a tick may raise)."""

from __future__ import annotations

from backend.exceptions import Conflict, NotFound


class WatcherError(Exception):
    """Root of the watcher's internal errors."""


class ChainMoved(WatcherError):
    """The chain changed between reading headers and logs; the tick is retried, nothing stored."""


class DeepReorg(WatcherError):
    """No stored header is on the canonical chain any more: the reorg is deeper than the window."""


class UnknownWatchedChain(NotFound):
    """The chain is not configured or not watched yet."""

    code = "watcher_chain_not_found"


class NotStarted(Conflict):
    """The chain has no cursor yet: nothing was ingested."""

    code = "watcher_not_started"
