"""Progress of a run's generation: a bar on a terminal, plain log lines without one.

* Counts requests, not batches: backends that stream (vllm, openai, Ray workers) advance the bar per
  finished request; batch backends (hf) per finished batch.
* The ETA is taken from the requests completed in this invocation (elapsed / done x remaining) and is
  shown as ``-`` until the first one finishes, instead of a rate guessed from nothing.
* Prompt tokens/s and generated tokens/s are counted separately (long-context runs are prefill-bound).
* The task of the latest finished request is shown by its full name.
* With no terminal (a log file, CI, nohup), a plain line is written every ``EVALSUITE_PROGRESS_INTERVAL``
  seconds (default 30) while generation runs.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, TextIO

from .types import Generation

DEFAULT_INTERVAL_S = 30.0


def _hms(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    s = int(round(max(0.0, seconds)))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _rate(n: int, dt: float) -> str:
    if dt <= 0 or n <= 0:  # no counts (a scripted backend without a tokenizer) or no time yet
        return "-"
    r = n / dt
    return f"{r:,.0f}" if r >= 100 else f"{r:.1f}"


class Progress:
    """``mode``: ``bar`` (rich, on stderr), ``log`` (plain lines on stderr) or ``off``. The total grows as
    passes are planned (a multi-pass task adds its follow-ups as answers arrive)."""

    def __init__(self, mode: str = "off", interval_s: float | None = None, stream: TextIO | None = None):
        self.mode = mode
        self.total = 0
        self.done = 0
        self.errors = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.task = ""
        self.t0: float | None = None
        self.stream = stream or sys.stderr
        env = os.environ.get("EVALSUITE_PROGRESS_INTERVAL")
        try:
            self.interval = float(interval_s if interval_s is not None else env or DEFAULT_INTERVAL_S)
        except ValueError:
            self.interval = DEFAULT_INTERVAL_S
        self._bar: Any = None
        self._tid: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def auto(enabled: bool) -> "Progress":
        """A bar on a terminal, log lines otherwise; nothing when disabled (``--no-progress``)."""
        if not enabled:
            return Progress("off")
        return Progress("bar" if sys.stderr.isatty() else "log")

    # -- numbers --------------------------------------------------------------------------------------
    def elapsed(self) -> float:
        return time.perf_counter() - self.t0 if self.t0 is not None else 0.0

    def eta(self) -> float | None:
        """Seconds left from the completed requests' pace; None before the first one finished."""
        if not self.done or self.t0 is None:
            return None
        return self.elapsed() / self.done * max(0, self.total - self.done)

    def rates(self) -> str:
        dt = self.elapsed()
        return f"prompt {_rate(self.prompt_tokens, dt)} tok/s, generated {_rate(self.completion_tokens, dt)} tok/s"

    def line(self) -> str:
        return (f"evalsuite: generating {self.done}/{self.total} requests, {self.errors} errors, "
                f"{self.rates()}, elapsed {_hms(self.elapsed())}, ETA {_hms(self.eta())}"
                + (f" (last: {self.task})" if self.task else ""))

    # -- events ---------------------------------------------------------------------------------------
    def grow(self, n: int) -> None:
        if n <= 0:
            return
        self.total += n
        if self.t0 is None:
            self.t0 = time.perf_counter()
        if self.mode == "bar":
            if self._bar is None:
                self._start_bar()
            else:
                self._bar.update(self._tid, total=self.total)
        elif self.mode == "log" and self._thread is None:
            self._thread = threading.Thread(target=self._log_loop, name="evalsuite-progress", daemon=True)
            self._thread.start()

    def advance(self, task: str, gen: Generation) -> None:
        self.done += 1
        self.errors += 0 if gen.ok else 1
        self.prompt_tokens += gen.prompt_tokens or 0
        self.completion_tokens += gen.completion_tokens or 0
        self.task = task
        if self._bar is not None:
            self._bar.update(self._tid, advance=1, errors=self.errors, rates=self.rates(), task_name=task)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            if self.done:
                self._write(self.line())
        if self._bar is not None:
            self._bar.stop()

    # -- drawing ----------------------------------------------------------------------------------------
    def _write(self, text: str) -> None:
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def _log_loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._write(self.line())

    def _start_bar(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, ProgressColumn, TextColumn
        from rich.text import Text

        owner = self

        class Eta(ProgressColumn):
            """ETA from this invocation's completed requests, recomputed at every refresh."""

            def render(self, task: Any) -> Text:
                return Text(f"elapsed {_hms(owner.elapsed())} ETA {_hms(owner.eta())}")

        self._bar = RichProgress(
            TextColumn("[bold]generating"), BarColumn(bar_width=24), MofNCompleteColumn(),
            TextColumn("errors {task.fields[errors]}"), TextColumn("{task.fields[rates]}"), Eta(),
            TextColumn("{task.fields[task_name]}"),
            console=Console(stderr=True), transient=False)
        self._bar.start()
        self._tid = self._bar.add_task("gen", total=self.total, errors=0, rates="-", task_name="")
