"""Progress as plain lines, for logs without a terminal (training, generation, scoring)."""

from __future__ import annotations

import time

PROGRESS_EVERY_S = 30.0  # wall time between progress lines


class ProgressLines:
    """Progress as plain lines, for logs without a terminal (a `dvc repro` stage runs with
    --no-progress): "<label>: 1200/80000 steps, 61.3 steps/s, ETA 21 min", once every
    PROGRESS_EVERY_S seconds of wall time, never per item (the caller prints its end)."""

    def __init__(self, label: str, total: int, done: int = 0, unit: str = "steps",
                 clock=time.perf_counter):
        self.label, self.total, self.unit, self.clock = label, total, unit, clock
        self.start_done, self.began = done, clock()
        self.last = self.began

    def update(self, done: int) -> str | None:
        """The line for `done` items, printed and returned when one is due (else None)."""
        now = self.clock()
        if now - self.last < PROGRESS_EVERY_S or done >= self.total:
            return None
        self.last = now
        rate = (done - self.start_done) / max(now - self.began, 1e-9)
        left = (self.total - done) / rate if rate > 0 else float("inf")
        line = (f"{self.label}: {done}/{self.total} {self.unit}, {rate:.3g} {self.unit}/s, "
                f"ETA {format_duration(left)}")
        print(line, flush=True)
        return line


def format_duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "unknown"
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"
