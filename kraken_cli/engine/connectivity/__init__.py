"""FC flavors from ROI time series or covariances: covariance, correlation, and the paper's
regularized precision / partial correlation (UPSTREAM 1.7 and 13), identical to the original's
``regularize_fc_precision.py``.
"""

from __future__ import annotations

from .pipeline import ConnectivityConfig, ConnectivityResult, run_connectivity

__all__ = ["ConnectivityConfig", "ConnectivityResult", "run_connectivity"]
