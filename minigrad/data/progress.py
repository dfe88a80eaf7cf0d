"""A progress bar: tqdm when it is installed, otherwise a plain one-line printer.

Used for downloads, image decoding and training epochs. ``progress_bar(...)``
returns an object with ``update(n)``, ``set_postfix(text)`` and ``close()`` (and
works as a context manager) whichever implementation backs it.
"""
import sys
import time

__all__ = ["progress_bar", "PlainProgress"]


def progress_bar(total=None, desc="", unit="it", disable=None, file=None, leave=False,
                 unit_scale=False, kind="auto"):
    """A progress bar; ``kind`` is ``"auto"`` (tqdm if importable), ``"tqdm"`` or ``"plain"``.

    ``disable``: ``True`` draws nothing, ``False`` draws always, ``None`` (the default,
    tqdm's own meaning) draws only when ``file`` (default stderr) is a terminal, so a
    log file or CI output holds no carriage-return frames. Notebook widgets (tqdm's
    notebook bar) are drawn either way.
    """
    if kind not in ("auto", "tqdm", "plain"):
        raise ValueError(f"progress kind must be 'auto', 'tqdm' or 'plain', got {kind!r}")
    if kind != "plain":
        try:
            from tqdm.auto import tqdm
        except ImportError:
            if kind == "tqdm":
                raise ImportError("tqdm is not installed: pip install 'minigrad[progress]'")
        else:
            return _TqdmProgress(tqdm(total=total, desc=desc, unit=unit, disable=disable,
                                      file=file, leave=leave, unit_scale=unit_scale,
                                      dynamic_ncols=True))
    return PlainProgress(total=total, desc=desc, unit=unit, disable=disable, file=file,
                         leave=leave, unit_scale=unit_scale)


class _TqdmProgress:
    """Thin adapter so tqdm and the plain printer share one small interface."""

    def __init__(self, bar):
        self.bar = bar

    def update(self, n=1):
        self.bar.update(n)

    def set_postfix(self, text):
        self.bar.set_postfix_str(text, refresh=False)

    def close(self):
        self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class PlainProgress:
    """One line rewritten in place (``\\r``), at most ten times a second.

    With ``disable=None`` (the default) nothing is drawn when the output is not a
    terminal (a log file, a pipe), so logs hold only the summary lines their callers
    print; ``disable=False`` draws anyway.
    """

    def __init__(self, total=None, desc="", unit="it", disable=None, file=None,
                 leave=False, unit_scale=False, interval=0.1):
        self.total = total
        self.desc = desc
        self.unit = unit
        self.file = file if file is not None else sys.stderr
        isatty = getattr(self.file, "isatty", lambda: False)
        self.active = not disable and (disable is not None or bool(isatty()))
        self.leave = leave
        self.unit_scale = unit_scale
        self.interval = interval
        self.n = 0
        self.postfix = ""
        self._start = time.perf_counter()
        self._last_draw = 0.0
        self._width = 0

    def update(self, n=1):
        """Advance by ``n`` and redraw if enough time has passed."""
        self.n += n
        now = time.perf_counter()
        if self.active and (now - self._last_draw >= self.interval
                            or (self.total is not None and self.n >= self.total)):
            self._last_draw = now
            self._draw(now)

    def set_postfix(self, text):
        """Text shown after the counter (e.g. running loss and accuracy)."""
        self.postfix = text

    def render(self, now=None):
        """The line as it would be drawn now."""
        now = time.perf_counter() if now is None else now
        elapsed = max(now - self._start, 1e-9)
        rate = self.n / elapsed
        count = _scaled(self.n) if self.unit_scale else str(self.n)
        parts = [self.desc] if self.desc else []
        if self.total:
            total = _scaled(self.total) if self.unit_scale else str(self.total)
            filled = int(20 * min(self.n / self.total, 1.0))
            parts.append(f"[{'=' * filled}{'.' * (20 - filled)}] {count}/{total}")
        else:
            parts.append(count)
        rate_text = _scaled(rate) if self.unit_scale else f"{rate:.1f}"
        parts.append(f"{elapsed:.1f}s {rate_text} {self.unit}/s")
        if self.postfix:
            parts.append(self.postfix)
        return " ".join(parts)

    def _draw(self, now):
        line = self.render(now)
        pad = " " * max(self._width - len(line), 0)
        self.file.write("\r" + line + pad)
        self.file.flush()
        self._width = len(line)

    def close(self):
        """Finish the line: keep it (``leave=True``) or wipe it."""
        if not self.active:
            return
        if self.leave:
            self._draw(time.perf_counter())
            self.file.write("\n")
        else:
            self.file.write("\r" + " " * self._width + "\r")
        self.file.flush()
        self.active = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _scaled(value):
    """1234567 -> '1.2M' (for byte counts)."""
    for suffix in ("", "k", "M", "G", "T"):
        if abs(value) < 1000:
            return f"{value:.1f}{suffix}" if suffix else f"{value:.0f}"
        value /= 1000.0
    return f"{value:.1f}P"
