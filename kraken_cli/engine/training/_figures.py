"""Helper processes that draw the training figures (curves and heatmap) side by side.

The figures of ``kraken train`` come after the last checkpoint, so they add to the command's time:
importing matplotlib and drawing the two PNGs one after the other took about 2 s of recipe P's
15 s (4 s on a busy machine). :func:`start_figure_workers` starts one
``python -m kraken_cli.engine.training._figures`` per figure when training starts; each imports the
plotting code while the model trains (recipe P trains on one thread, leaving a core free), then
waits for one job on its stdin: the final training record's file and the PNG to write (atomically,
like every output). The two figures are then drawn at the same time, and the training process
never imports matplotlib. A helper that cannot start or fails leaves its figure to the training
process, as before. A helper exits at end of input, so a run that stops early (an error, Ctrl-C)
leaves none behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import weakref
from pathlib import Path

#: Seconds the training process waits for a figure before drawing it itself.
WAIT_SECONDS = 300.0
#: The figures, by the kind of file (``names.path(kind, "png")``).
KINDS = ("loss", "heatmap")


class FigureWorker:
    """One helper process (see the module docstring)."""

    def __init__(self) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self.proc: subprocess.Popen[str] | None = subprocess.Popen(
            [sys.executable, "-m", "kraken_cli.engine.training._figures"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self._finalizer = weakref.finalize(self, _stop, self.proc)

    def submit(self, kind: str, record: str | os.PathLike[str], out_file: str | os.PathLike[str],
               title: str | None = None) -> None:
        """Ask for the ``kind`` figure (:data:`KINDS`) of ``record`` in ``out_file``; :meth:`result` waits for it."""
        assert self.proc is not None and self.proc.stdin is not None
        job = {"kind": kind, "record": str(record), "out": str(out_file), "title": title}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()  # communicate() in result() closes it

    def result(self) -> Path:
        """The figure's file; RuntimeError with the helper's reason when it could not draw it."""
        assert self.proc is not None
        try:
            out, err = self.proc.communicate(timeout=WAIT_SECONDS)
        finally:
            self.close()
        lines = out.strip().splitlines()
        reply = json.loads(lines[-1]) if lines else {"ok": False, "error": err.strip()[-500:] or "no reply"}
        if not reply.get("ok"):
            raise RuntimeError(f"the figure helper failed: {reply.get('error')}")
        return Path(str(reply["path"]))

    def close(self) -> None:
        """Stop the helper (if it still runs)."""
        self._finalizer()
        self.proc = None


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None and not stream.closed:
            stream.close()


#: Training work (epochs x paths x training subjects x input features) from which helpers pay off: below it
#: the training is over before they have imported the plotting code (recipe P: 300 epochs give 1.1e8).
HELPER_MIN_WORK = 3e7


def helpers_pay_off(epochs: int, n_paths: int, n_subjects: int, width: int) -> bool:
    """Whether the training is long enough to hide the helpers' start (else the figures are drawn in-process)."""
    return float(epochs) * n_paths * n_subjects * width >= HELPER_MIN_WORK


def start_figure_workers() -> dict[str, FigureWorker]:
    """One started :class:`FigureWorker` per figure of :data:`KINDS` (those that could start)."""
    workers = {}
    for kind in KINDS:
        try:
            workers[kind] = FigureWorker()
        except OSError:
            pass
    return workers


def draw(kind: str, record: object, out_file: str | os.PathLike[str], title: str | None = None) -> Path:
    """Draw the ``kind`` figure of ``record`` (a TrainRecord or its file) here."""
    if kind == "loss":
        from ..plots.curves import plot_training_curves

        return plot_training_curves(record, out_file, title=title)  # type: ignore[arg-type]
    from ..plots.select import heatmap_from_record

    return heatmap_from_record(record, out_file)  # type: ignore[arg-type]


#: Niceness of a helper: its imports yield to the training they run beside (they took its first epochs' time).
HELPER_NICENESS = 10


def main() -> int:
    """The helper: import the plotting code now, then draw the one figure asked for on stdin."""
    if hasattr(os, "nice"):
        os.nice(HELPER_NICENESS)
    from ..plots import curves, select  # noqa: F401  (the import is the point: done while the model trains)

    line = sys.stdin.readline()
    if not line.strip():
        return 0  # the training process stopped without figures
    job = json.loads(line)
    try:
        path = draw(job["kind"], job["record"], job["out"], job.get("title"))
        reply = {"ok": True, "path": str(path)}
    except Exception as exc:  # reported to the training process, which logs it
        reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(reply), flush=True)
    sys.stderr.flush()
    os._exit(0)  # the figure is written and reported: skip tearing down torch and matplotlib (0.3-0.5 s)


if __name__ == "__main__":
    sys.exit(main())
