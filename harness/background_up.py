"""A platform stood up on a thread of its own, so that a session whose first tests need no cluster
(the static suite) does not wait for one afterwards: `claim()` hands it over once it is up (or
raises what stopped it); `abandon()`, for a session that ended before claiming it, waits for the
stand-up to finish and tears it down, leaving nothing running."""

from __future__ import annotations

import threading
from typing import Any


def worth_it(needs_cluster: list[bool]) -> bool:
    """Standing up early pays when the first test, in run order, needs no cluster and a later one does."""
    return any(needs_cluster) and not needs_cluster[0]


class BackgroundUp:
    def __init__(self, platform: Any):
        self.platform = platform
        self.claimed = False
        self._error: BaseException | None = None
        # Not a daemon: an interpreter that exits meanwhile waits for the stand-up, then the
        # platform's own exit hook tears it down.
        self._thread = threading.Thread(target=self._up, name="platform-up")
        self._thread.start()

    def _up(self) -> None:
        try:
            self.platform.up()  # tears down what it started when it fails
        except BaseException as exc:  # noqa: BLE001 - handed to whoever claims the platform
            self._error = exc

    def claim(self) -> Any:
        """The platform, up; its owner now tears it down."""
        self._thread.join()
        self.claimed = True
        if self._error is not None:
            raise self._error
        return self.platform

    def abandon(self) -> None:
        """Nobody took the platform: down once its stand-up is over."""
        if self.claimed:
            return
        self.claimed = True
        self._thread.join()
        if self._error is None:
            self.platform.down()
