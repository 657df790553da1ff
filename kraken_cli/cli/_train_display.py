"""Live training display: a rich progress bar plus a table at display epochs (plain lines off a TTY)."""

from __future__ import annotations

import math
from typing import Any

from rich.markup import escape
from rich.table import Table

from kraken_cli.engine.progress import NULL_PROGRESS

from ._console import err
from ._progress import RichProgress


def _f(v: float | None, fmt: str = ".3f") -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


class TrainDisplay:
    """Epoch, s/epoch, ETA, train/validation loss, mean validation top-1 and avgrank."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = err.is_terminal
        self.progress: Any = NULL_PROGRESS if (quiet or not self.tty) else RichProgress()

    def __enter__(self) -> TrainDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not NULL_PROGRESS:
            self.progress.done()

    def show(self, ev: Any) -> None:
        if self.quiet:
            return
        eta = ev.seconds_per_epoch * max(ev.epochs - ev.epoch, 0)
        top1, rank = ev.mean("top1acc"), ev.mean("avgrank")
        corr = ev.mean("avgcorr_resid")
        lt = float(ev.loss_train.mean()) if len(ev.loss_train) else float("nan")
        lv = float(ev.loss_val.mean()) if len(ev.loss_val) else float("nan")
        if not self.tty:
            err.print(f"epoch {ev.epoch}/{ev.epochs}  {ev.seconds_per_epoch * 1000:.1f} ms/epoch  ETA {eta:.0f}s  "
                      f"loss train {_f(lt, '.4g')} val {_f(lv, '.4g')}  val top1 {_f(top1)} avgrank {_f(rank)} "
                      f"demeaned corr {_f(corr)}", highlight=False)
            return
        t = Table(title=f"epoch {ev.epoch}/{ev.epochs} · {ev.seconds_per_epoch * 1000:.1f} ms/epoch · ETA {eta:.0f} s",
                  title_justify="left", header_style="bold")
        for c in ("", "train loss", "val loss", "val top-1", "val avgrank", "val demeaned corr"):
            t.add_column(c)
        t.add_row("mean over paths", _f(lt, ".4g"), _f(lv, ".4g"), _f(top1), _f(rank), _f(corr))
        if len(ev.path_names) <= 30:
            for i, name in enumerate(ev.path_names):
                m = {k: v[i] for k, v in ev.metrics.items()}
                t.add_row(escape(name), _f(float(ev.loss_train[i]), ".4g"), _f(float(ev.loss_val[i]), ".4g"),
                          _f(m.get("top1acc")), _f(m.get("avgrank")), _f(m.get("avgcorr_resid")))
        err.print(t)
