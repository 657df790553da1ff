"""A helper process that draws the training heatmap while the training process draws the curves.

The figures of ``kraken train`` come after the last checkpoint, so they add to the command's time:
importing matplotlib and drawing the two PNGs one after the other took about 2 s of recipe P's
15 s. :class:`HeatmapWorker` starts ``python -m kraken_cli.engine.training._figures`` when training
starts; it imports the plotting code while the model trains (on a core training leaves free),
then waits for one job on its stdin: the final training record's file and the heatmap to write.
It draws the heatmap (written atomically, like every output) while the training process draws the
curves. A worker that cannot start or fails leaves the heatmap to the training process, as before.
The helper exits at end of input, so a run that stops early (an error, Ctrl-C) leaves none behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import weakref
from pathlib import Path

#: Seconds the training process waits for the heatmap before drawing it itself.
WAIT_SECONDS = 300.0


class HeatmapWorker:
    """The helper process (see the module docstring)."""

    def __init__(self) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self.proc: subprocess.Popen[str] | None = subprocess.Popen(
            [sys.executable, "-m", "kraken_cli.engine.training._figures"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self._finalizer = weakref.finalize(self, _stop, self.proc)

    def submit(self, record: str | os.PathLike[str], out_file: str | os.PathLike[str]) -> None:
        """Ask for ``heatmap_from_record(record, out_file)``; :meth:`result` waits for it."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"record": str(record), "out": str(out_file)}) + "\n")
        self.proc.stdin.flush()  # communicate() in result() closes it

    def result(self) -> Path:
        """The heatmap file; RuntimeError with the helper's reason when it could not draw it."""
        assert self.proc is not None
        try:
            out, err = self.proc.communicate(timeout=WAIT_SECONDS)
        finally:
            self.close()
        lines = out.strip().splitlines()
        reply = json.loads(lines[-1]) if lines else {"ok": False, "error": err.strip()[-500:] or "no reply"}
        if not reply.get("ok"):
            raise RuntimeError(f"the heatmap helper failed: {reply.get('error')}")
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


def start_heatmap_worker() -> HeatmapWorker | None:
    """A started :class:`HeatmapWorker`, or None when no process can be started."""
    try:
        return HeatmapWorker()
    except OSError:
        return None


def main() -> int:
    """The helper: import the plotting code now, then draw the one heatmap asked for on stdin."""
    from ..plots.select import heatmap_from_record

    line = sys.stdin.readline()
    if not line.strip():
        return 0  # the training process stopped without figures
    job = json.loads(line)
    try:
        path = heatmap_from_record(job["record"], job["out"])
        reply = {"ok": True, "path": str(path)}
    except Exception as exc:  # reported to the training process, which logs it
        reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(reply), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
