"""Identifiability metrics of predicted connectomes (UPSTREAM 14).

For ``n`` subjects, ``X`` is the true data and ``Y`` the prediction, both ``(n, F)``.
``C = xycorr(X, Y)`` holds ``C[i, j]``, the Pearson correlation over features between the
truth of subject ``i`` and the prediction for subject ``j``. From ``C``:

============================  ====================================================================
kraken name                   definition
============================  ====================================================================
``top1acc``                   mean_i [argmax_j C[i, j] == i]  (chance 1/n)
``topNacc``                   mean_i [i is among the N largest of row i]  (N = ``top_n``, 2)
``avgrank``                   1 - mean_i(r_i) / n, r_i the 0-based rank of i in row i sorted
                              descending (perfect 1, chance about 0.5 + 1/(2n))
``avgrank_mean``              1 + mean_i(r_i), the mean 1-based rank
``avgcorr``                   mean of diag(C)
``avgcorr_other``             mean of the strict upper triangle of C (C is not symmetric)
``avgcorr_resid``             ``avgcorr`` of xycorr(X - mu, Y - mu) ("demeaned" identifiability)
``avgcorr_resid_other``       ``avgcorr_other`` of that demeaned matrix
``explainedvar``              1 - sum_f var(X_f - Y_f) / sum_f var(X_f), population variances
                              across subjects (R^2)
``*_pred2true``               top1acc, topNacc, avgrank on C^T (for each prediction, which truth
                              matches best)
``*_bidir``                   mean of the true->pred and pred->true values
============================  ====================================================================

Ranks and ties: ``r_i`` counts the entries of row i that are strictly better than ``C[i, i]``,
plus the equal entries at a smaller column index. That is the position of ``i`` in a *stable*
descending sort, so ``top1acc`` agrees with ``numpy.argmax`` (first index wins a tie). A NaN
correlation (a constant row) never beats anything: it ranks last.

One-column outputs (``F == 1``) use distances instead of correlations, as the original does:
``D = cdist(X, Y)``, the best match is the *smallest* distance, and ``avgcorr`` is the mean of
diag(D) (``avgcorr_other`` the strict upper triangle of D). The original's torch top-N for
distances picked the farthest entries (UPSTREAM sharp edge 8); kraken picks the nearest.

There is one implementation, :mod:`.kernel`: batched over a stack of predictions
``[P x n x F]``, float64, on the tensors' device (:func:`evaluate_paths_torch`, used in
training). The numpy functions of :mod:`.arrays` (:func:`evaluate_path` and the single metrics)
accept numpy arrays or torch tensors and run the same kernel on the CPU. Metric names and the
original's record field names live in :mod:`.names`.

Record field names
------------------
The original's training record (UPSTREAM 7.6) names these metrics differently;
:data:`RECORD_FIELDS` maps each kraken name to ``(base, suffix)`` and :func:`record_field`
assembles ``base + ["_OrigScale"] + suffix + "_" + split``:

====================  =================================  ======================================
kraken name           transformed-space field (val)       original-space field (val)
====================  =================================  ======================================
top1acc               corrloss_val                        corrloss_OrigScale_val
topNacc               corrlossN_val                       corrlossN_OrigScale_val
avgrank               corrlossRank_val                    corrlossRank_OrigScale_val
avgrank_mean          avgrank_val                         avgrank_OrigScale_val (kraken only)
avgcorr               avgcorr_val                         avgcorr_OrigScale_val
avgcorr_other         avgcorr_other_val                   avgcorr_OrigScale_other_val
avgcorr_resid         avgcorr_resid_val                   avgcorr_resid_OrigScale_val
avgcorr_resid_other   avgcorr_resid_other_val             avgcorr_resid_OrigScale_other_val
explainedvar          explainedvar_val                    explainedvar_OrigScale_val
top1acc_pred2true     corrloss_pred2true_val              corrloss_OrigScale_pred2true_val
topNacc_pred2true     corrlossN_pred2true_val             corrlossN_OrigScale_pred2true_val
avgrank_pred2true     corrlossRank_pred2true_val          corrlossRank_OrigScale_pred2true_val
top1acc_bidir         corrloss_bidir_val                  corrloss_bidir_OrigScale_val
topNacc_bidir         corrlossN_bidir_val                 corrlossN_bidir_OrigScale_val
avgrank_bidir         corrlossRank_bidir_val              corrlossRank_bidir_OrigScale_val
====================  =================================  ======================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports
from .names import METRIC_NAMES as METRIC_NAMES
from .names import RECORD_FIELDS as RECORD_FIELDS
from .names import canonical_metric as canonical_metric
from .names import metrics_to_record_fields as metrics_to_record_fields
from .names import record_field as record_field

if TYPE_CHECKING:  # what the lazy exports below resolve to, for type checkers and editors
    from .arrays import ArrayLike as ArrayLike
    from .arrays import avgcorr as avgcorr
    from .arrays import avgcorr_other as avgcorr_other
    from .arrays import avgrank as avgrank
    from .arrays import avgrank_mean as avgrank_mean
    from .arrays import diag_ranks as diag_ranks
    from .arrays import evaluate_path as evaluate_path
    from .arrays import explained_variance as explained_variance
    from .arrays import top1acc as top1acc
    from .arrays import topNacc as topNacc
    from .arrays import xycorr as xycorr
    from .arrays import xydist as xydist
    from .kernel import evaluate_paths_torch as evaluate_paths_torch
    from .kernel import xycorr_torch as xycorr_torch

# The metric names load eagerly; the numerics (numpy and torch) on first use, so that reading a
# training record or drawing its figures (the figure helpers of training/_figures) never imports torch.
_LAZY = {name: "arrays" for name in ("ArrayLike", "avgcorr", "avgcorr_other", "avgrank", "avgrank_mean",
                                     "diag_ranks", "evaluate_path", "explained_variance", "top1acc", "topNacc",
                                     "xycorr", "xydist")}
_LAZY.update({"evaluate_paths_torch": "kernel", "xycorr_torch": "kernel"})
_lazy_all, __getattr__, _lazy_dir = lazy_exports(__name__, _LAZY)
__all__ = sorted([*_lazy_all, "METRIC_NAMES", "RECORD_FIELDS", "canonical_metric", "metrics_to_record_fields",
                  "record_field"])


def __dir__() -> list[str]:
    return __all__
