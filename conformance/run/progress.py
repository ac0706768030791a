"""One progress line on stderr, for ``refact conform`` and ``refact sweep`` alike.

On a terminal the line is redrawn in place: a bar, the count, the rate, the time left
and what is being worked on. Elsewhere (a log file, a CI job) a plain line is written
every ``interval`` seconds and at the end, so a log neither floods nor goes silent.
"""

import sys
import time

__all__ = ["Progress"]

_BAR_WIDTH = 30
_NOTE_WIDTH = 48


def _duration(seconds):
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _rate(per_second, unit):
    if per_second >= 1e6:
        return f"{per_second / 1e6:6.2f} M {unit}/s"
    return f"{per_second:7.1f} {unit}/s"


class Progress:
    """``total`` items of ``unit`` (``done`` of them finished before this session);
    ``update(count, note)`` records more. The rate and the time left count this
    session's items only, so a resumed sweep does not look faster than it is."""

    def __init__(self, label, total, done=0, *, unit="points", stream=None, enabled=True,
                 interval=60.0):
        self.label, self.total, self.done, self.unit = label, max(total, 0), done, unit
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.terminal = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval = interval
        self.note = ""
        self._started = self._last_line = time.monotonic()
        self._session = 0
        if enabled:
            self._draw()

    def update(self, count=1, note=""):
        self.done += count
        self._session += count
        self.note = note or self.note
        now = time.monotonic()
        finished = self.done >= self.total
        if self.terminal or (self.enabled and (now - self._last_line >= self.interval or finished)):
            self._last_line = now
            self._draw()

    def _draw(self):
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = self._session / elapsed
        left = max(self.total - self.done, 0)
        eta = _duration(left / rate) if rate > 0 else "?"
        percent = 100 * self.done / self.total if self.total else 100.0
        text = (f"{self.done:,}/{self.total:,} {self.unit} ({percent:5.1f}%)  "
                f"{_rate(rate, self.unit)}  elapsed {_duration(elapsed)}  ETA {eta}")
        note = f"  {self.note[:_NOTE_WIDTH]:{_NOTE_WIDTH}}" if self.note else ""
        if self.terminal:
            filled = int(_BAR_WIDTH * self.done / self.total) if self.total else _BAR_WIDTH
            self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] "
                              f"{text}{note}")
        else:
            self.stream.write(f"{self.label}: {text}{note}\n")
        self.stream.flush()

    def close(self):
        if self.terminal:
            self.stream.write("\n")
            self.stream.flush()
