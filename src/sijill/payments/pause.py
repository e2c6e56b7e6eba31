"""Points where a payments command can be told to stop and wait
(`SIJILL_PAYMENTS_PAUSE_AT=<point>`): it says `paused at <point>` on stderr and waits to be
killed. This hook is deliberate: it is how the tests kill a process at a known point (during
prepare, while a file is half written, during reconciliation) and prove that running the same
command again loses nothing and pays nothing twice; a timer would race a command that may
finish first on a busy machine."""

import os
import sys
import threading

POINTS = (
    "prepare-before-commit",  # every row of a run written, not committed
    "file-half-written",  # the first batch's file half written (as <name>.part)
    "release-before-commit",
    "reconcile-before-commit",
)


def pause_point(point: str) -> None:
    assert point in POINTS, point
    if os.environ.get("SIJILL_PAYMENTS_PAUSE_AT") == point:
        print(f"paused at {point}", file=sys.stderr, flush=True)
        threading.Event().wait()
