"""Module for the Laplace negative log-likelihood with a predicted log-scale."""

from __future__ import annotations

import depthloss.functional as DF
from depthloss.nn.gaussian_nll import NLLBase
from depthloss.registry import register_loss

__all__ = ["LaplaceNLLLoss"]


@register_loss("laplace-nll")
class LaplaceNLLLoss(NLLBase):
    """Laplace NLL with a predicted per-pixel log scale, on log-depth residuals by default (:func:`depthloss.functional.laplace_nll`).

    Args:
        residual: ``"log"`` (default) or ``"linear"``.
        full: add the constant ``log 2``.
        log_scale_range: straight-through clamp of ``log_scale`` (default ``(-20, 20)``).
        **kwargs: :class:`DepthLoss` arguments (``input_space``, required).

    ``forward(pred, target, mask=None, progress=None, *, log_scale)``: ``log_scale`` is required.
    """

    formula = "mean(|r| e^-s + s), r = log z_p - log z_g (or z_p - z_g), s = log b"
    when = "Metric depth with an uncertainty head, robust to outliers (the L1 counterpart of gaussian-nll)."
    kernel = staticmethod(DF.laplace_nll)
    functional = staticmethod(DF.laplace_nll)
