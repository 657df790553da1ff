"""File names: the files of a training run, and the files that sit beside a checkpoint (UPSTREAM 7.6).

One rule, kept here only. A run writes ``<prefix>_<kind>_<suffix>.<ext>`` for each kind of file in
:data:`RUN_FILES`; checkpoints add ``_epNNNNNN`` (completed epochs, DESIGN 5) before ``.pt``. So the
files beside a checkpoint are found by swapping ``_chkpt_`` for their kind and the epoch tag for
their extension: ``x_chkpt_S_ep000500.pt`` -> ``x_ioxfm_S.npy``, ``x_trainrecord_S.mat``, ``x_log_S.txt``.

>>> sibling("run/x_chkpt_abc_ep000500.pt", "ioxfm").as_posix()
'run/x_ioxfm_abc.npy'
>>> run_prefix("run/x_chkpt_abc_ep000500.pt")
'run/x'
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

#: kind -> extension of every file a training run writes under its prefix.
RUN_FILES: dict[str, str] = {"chkpt": "pt", "subjsplit": "mat", "ioxfm": "npy", "trainrecord": "mat",
                             "config": "json", "heatmap": "png", "loss": "png", "log": "txt"}
_EPOCH_TAG = re.compile(r"_ep(och)?\d+\.pt$")


@dataclass
class RunNames:
    """Where a run writes its files (None prefix: nowhere), and the files written so far by kind."""

    prefix: str | None
    suffix: str
    files: dict[str, Path] = field(default_factory=dict)

    def path(self, kind: str, ext: str | None = None) -> Path | None:
        """``<prefix>_<kind>_<suffix>.<ext>`` (the kind's usual extension when ``ext`` is None)."""
        if self.prefix is None:
            return None
        return Path(f"{self.prefix}_{kind}_{self.suffix}.{ext or RUN_FILES[kind]}")

    def checkpoint(self, completed: int) -> Path | None:
        """The checkpoint holding ``completed`` epochs."""
        base = self.path("chkpt")
        return None if base is None else base.with_name(base.name[:-3] + f"_ep{completed:06d}.pt")

    def all_paths(self) -> list[Path]:
        """Every file the run may write (checkpoints as their epoch-less base name)."""
        return [p for kind in RUN_FILES if (p := self.path(kind)) is not None]


def sibling(checkpoint: str | os.PathLike[str], kind: str) -> Path:
    """The file of ``kind`` (a key of :data:`RUN_FILES`) written beside ``checkpoint`` by the same run.

    Also the original's older ``_checkpoint_`` names, whose transform files say ``_iox_``.
    """
    p = Path(checkpoint)
    name = p.name.replace("_chkpt_", f"_{kind}_")
    if kind == "ioxfm":
        name = name.replace("_checkpoint_", "_iox_")
    ext = "." + RUN_FILES[kind]
    name = _EPOCH_TAG.sub(ext, name)
    if name.endswith(".pt"):
        name = name[:-3] + ext
    return p.with_name(name)


def run_prefix(checkpoint: str | os.PathLike[str]) -> str | None:
    """The ``-o`` prefix the checkpoint was written under (``PREFIX_chkpt_...``), or None."""
    p = Path(checkpoint)
    return str(p.with_name(p.name.split("_chkpt_")[0])) if "_chkpt_" in p.name else None


def release_kind(name: str) -> str:
    """Kind of a released file from its name: checkpoint, transform, regtarget, split or target."""
    if "_chkpt_" in name:
        return "checkpoint"
    if "_ioxfm_" in name:
        return "transform"
    if "_regtarget_" in name:
        return "regtarget"
    if name.startswith("subject_splits"):
        return "split"
    return "target"
