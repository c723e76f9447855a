"""Progress of long work: one helper for every stage that can run longer than ~30 s.

On a terminal it is a tqdm bar (count, rate, ETA). On a pipe -- CI logs, ``dvc repro > log`` -- tqdm's
carriage-return redraws become one unreadable line or hundreds of lines, so :class:`Progress` prints one
plain line per ``JIUZHANG_PROGRESS_EVERY`` percent (default 10) instead::

    synthesize: 205/512 rec (40%), 5.31 rec/s, elapsed 0:00:39, ETA 0:00:58

``JIUZHANG_PROGRESS`` picks the form: ``auto`` (bar on a terminal, lines otherwise; the default), ``bar``,
``lines`` or ``off``. Under torchrun/deepspeed only rank 0 reports. Lines start after 5 s: work that ends
sooner prints its final line only.

The same numbers go to the stage's MLflow run, on the same cadence as the lines, as metrics
``progress.<name>.done``, ``.fraction``, ``.rate`` (units per second) and ``.eta_s`` with ``step`` = units
done, so a run's progress can be followed in the MLflow UI while it runs. The stage sets where they go
(:func:`reporting_to`, called by ``jiuzhang.runtime.as_stage``); library code only creates a
``Progress`` and calls :meth:`Progress.update`, and never needs the run object.

Our own code around tqdm because neither tqdm nor rich has a "one line per N% when not a TTY" mode or a
metrics hook.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, TextIO

MODE_ENV = "JIUZHANG_PROGRESS"
EVERY_ENV = "JIUZHANG_PROGRESS_EVERY"
# In 'lines' form, work that ends within this many seconds prints its final line only: ten lines about a
# two-second loop are noise in a CI log.
QUIET_S = 5.0
MODES = ("auto", "bar", "lines", "off")

Sink = Callable[[dict[str, float], int], None]
_SINK: contextvars.ContextVar[Sink | None] = contextvars.ContextVar("jiuzhang_progress_sink", default=None)
_STAGE: contextvars.ContextVar[str | None] = contextvars.ContextVar("jiuzhang_progress_stage", default=None)


@contextlib.contextmanager
def reporting_to(sink: Sink | None, stage: str | None = None) -> Iterator[None]:
    """Send every :class:`Progress`'s figures inside this block to ``sink(metrics, step)`` (an MLflow run's
    ``log_metrics``); lines and bars are prefixed with ``stage`` (``eval@gsm8k gsm8k answers: ...``)."""
    tokens = _SINK.set(sink), _STAGE.set(stage)
    try:
        yield
    finally:
        _SINK.reset(tokens[0])
        _STAGE.reset(tokens[1])


def mode(stream: TextIO | None = None) -> str:
    """The form progress takes here: 'bar', 'lines' or 'off' (``JIUZHANG_PROGRESS``, rank, terminal)."""
    chosen = os.environ.get(MODE_ENV, "auto").strip().lower() or "auto"
    if chosen not in MODES:
        raise ValueError(f"{MODE_ENV}={chosen!r}: use one of {', '.join(MODES)}")
    if os.environ.get("RANK", "0") != "0":
        return "off"
    if chosen != "auto":
        return chosen
    stream = stream or sys.stderr
    return "bar" if getattr(stream, "isatty", lambda: False)() else "lines"


def quiet_library_bars() -> None:
    """Hugging Face's own bars ("Loading weights", "Writing model shards", "Map") off where ours print lines:
    in a log each is a carriage-return line per model load or save. Their switches are read at import, so
    both the environment and, for a library already imported, its function are set."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "datasets" in sys.modules:
        import datasets

        datasets.disable_progress_bars()


def every_percent() -> float:
    """The percentage step of progress lines when not on a terminal (env JIUZHANG_PROGRESS_EVERY, default 10)."""
    raw = os.environ.get(EVERY_ENV, "10")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{EVERY_ENV}={raw!r}: give a percentage such as 10") from None
    if not 0 < value <= 100:
        raise ValueError(f"{EVERY_ENV}={raw!r}: give a percentage in (0, 100]")
    return value


def clock(seconds: float) -> str:
    """0:01:02 for 62 s ('?' when unknown)."""
    if seconds != seconds or seconds in (float("inf"), float("-inf")) or seconds < 0:
        return "?"
    return str(timedelta(seconds=int(round(seconds))))


class Progress:
    """``total`` units of work named ``name``; :meth:`update` after each piece.

    ``initial`` counts units already done before this process started (a resumed run): they show in the
    count but not in the rate, so the ETA is that of the work left. ``postfix`` values given to
    :meth:`update` (a loss, a keep rate) are shown after the figures. ``started`` (a ``time.perf_counter()``
    reading) dates work begun earlier in this process or its parent.
    """

    def __init__(self, name: str, total: int, unit: str = "it", initial: int = 0,
                 stream: TextIO | None = None, form: str | None = None, started: float | None = None) -> None:
        self.name, self.total, self.unit = name, max(0, int(total)), unit
        stage = _STAGE.get()
        self.label = name if not stage or name == stage else f"{stage} {name}"
        self.done = self.start = min(int(initial), self.total) if self.total else int(initial)
        self.stream = stream or sys.stderr
        self.form = form or mode(self.stream)
        self.every = every_percent()
        self.postfix: dict[str, Any] = {}
        self.started = time.perf_counter() if started is None else started  # a perf_counter() reading
        self._next_line = self._next_mark(self.done)
        self._sink = _SINK.get()
        self._sink_failed = False
        self._bar = None
        if self.form == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=self.total or None, initial=self.done, unit=unit, desc=self.label,
                             file=self.stream, mininterval=0.5, dynamic_ncols=True)

    # -- figures ------------------------------------------------------------------------------------------
    @property
    def elapsed(self) -> float:
        """Seconds since the work started."""
        return time.perf_counter() - self.started

    @property
    def rate(self) -> float:
        """Units per second since this process started (resumed units excluded)."""
        elapsed = self.elapsed
        return (self.done - self.start) / elapsed if elapsed > 0 else 0.0

    @property
    def eta(self) -> float:
        """Seconds left at the current rate (nan when unknown)."""
        rate = self.rate
        return (self.total - self.done) / rate if rate > 0 and self.total else float("nan")

    def figures(self) -> dict[str, float]:
        """What goes to MLflow (keys under ``progress.<name>.``)."""
        key = f"progress.{self.name.replace(' ', '_')}"
        out = {f"{key}.done": float(self.done), f"{key}.rate": round(self.rate, 4)}
        if self.total:
            out[f"{key}.fraction"] = round(self.done / self.total, 4)
        if self.eta == self.eta:
            out[f"{key}.eta_s"] = round(self.eta, 1)
        return out

    def line(self) -> str:
        """One plain line: count, share, rate, elapsed, ETA and the postfix values."""
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        count = f"{self.done}/{self.total}" if self.total else f"{self.done}"
        extra = "".join(f", {k} {_fmt(v)}" for k, v in self.postfix.items())
        timing = (f"done in {clock(self.elapsed)}" if self.total and self.done >= self.total
                  else f"elapsed {clock(self.elapsed)}, ETA {clock(self.eta)}")
        return f"{self.label}: {count} {self.unit}{share}, {self.rate:.3g} {self.unit}/s, {timing}{extra}"

    # -- updates ------------------------------------------------------------------------------------------
    def _next_mark(self, done: int) -> int:
        """The count at which the next line is due (the next multiple of ``every`` percent)."""
        if not self.total:
            return done + 1
        step = self.total * self.every / 100
        k = int(done / step) + 1
        return min(self.total, max(done + 1, int(-(-k * step // 1))))

    def update(self, n: int = 1, **postfix: Any) -> None:
        """``n`` more units done; ``postfix`` values replace the shown ones."""
        self.done += n
        if postfix:
            self.postfix.update(postfix)
            if self._bar is not None:
                self._bar.set_postfix({k: _fmt(v) for k, v in self.postfix.items()}, refresh=False)
        if self._bar is not None:
            self._bar.update(n)
        if self.done >= self._next_line:
            self._next_line = self._next_mark(self.done)
            if self.form == "lines" and (self.done >= self.total or self.elapsed >= QUIET_S):
                print(self.line(), file=self.stream, flush=True)
            self._report()

    def set(self, done: int, **postfix: Any) -> None:
        """The count is now ``done`` (work reported as a running total, e.g. a batch API's counts)."""
        self.update(done - self.done, **postfix)

    def write(self, message: str) -> None:
        """A message that does not break the bar."""
        if self._bar is not None:
            self._bar.write(message, file=self.stream)
        else:  # messages are not progress: they print in every form
            print(message, file=self.stream, flush=True)

    def _report(self) -> None:
        if self._sink is None or self._sink_failed:
            return
        try:
            self._sink(self.figures(), self.done)
        except Exception as exc:  # a tracking hiccup must not stop the work it reports on
            self._sink_failed = True
            warnings.warn(f"progress of {self.name!r} is no longer sent to MLflow: {exc}", stacklevel=2)

    def close(self) -> None:
        """Close the terminal bar, if any."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
