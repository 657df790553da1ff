"""The values of the options with a fixed set of choices, each defined once as a ``Literal`` type.

The engine checks settings against them (``typing.get_args``) and the CLI offers them as its options'
choices (Typer shows a ``Literal``'s values, e.g. ``<triu|nilearn>``). Standard library only: ``kraken --help``
imports this module.
"""

from __future__ import annotations

from typing import Literal

#: Where compute happens: auto (CUDA when available), cpu or cuda (the engine also takes ``cuda:N``).
Device = Literal["auto", "cpu", "cuda"]
#: Output file formats: MATLAB v5, MATLAB v7.3 (HDF5), npz, or a BIDS derivatives folder.
FileFormat = Literal["mat", "mat73", "npz", "bids"]
#: Order of [subjects x edges] inputs: kraken's ``numpy.triu_indices(R, 1)`` or nilearn's vectorized one.
EdgeOrder = Literal["triu", "nilearn"]
#: Missing parcels: an error, or each missing edge's mean over the other subjects.
ImputeMode = Literal["none", "mean"]
#: What ``kraken connectivity`` computes: covariance, Pearson correlation, the paper's partial correlation, precision.
Measure = Literal["cov", "corr", "pcorr", "precision"]
#: What ``kraken connectivity``'s inputs hold; ``auto``: square arrays are matrices, others T x R time series.
InputKind = Literal["auto", "timeseries", "matrix"]
