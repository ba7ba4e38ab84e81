r"""Video blocks: ``(B, T, H, W)`` sequences, per-sequence alignment, temporal gradient matching.

A *sequence* is one ``(T, H, W)`` clip of a batch. Per-sequence statistics play the role the
per-image statistics play elsewhere (``scope="image"`` means one statistic per sequence,
``scope="batch"`` one for the whole batch). Everything is dense and sync-free, like the rest
of :mod:`depthloss.functional`.
"""

from __future__ import annotations

from typing import Any, List, NamedTuple, Optional

import torch
from torch import Tensor

from depthloss._checks import check_choice, check_float, check_int, check_like, check_mask
from depthloss.functional._plumbing import compute_dtype, per_image, safe_div
from depthloss.functional.statistics import lsq_rows

__all__ = [
    "ALIGNS",
    "THRESHOLD_MODES",
    "TemporalTerms",
    "align_sequences",
    "check_temporal_args",
    "check_video",
    "check_video_pair",
    "frame_range",
    "temporal_terms",
    "video_rows",
]

ALIGNS = ("lsq", "none")
THRESHOLD_MODES = ("range", "absolute")


# -- checks ---------------------------------------------------------------------------------
def check_video(name: str, x: Any) -> Tensor:
    """Check that ``x`` is a floating tensor of shape ``(B, T, H, W)``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() != 4:
        raise ValueError(f"{name} must have shape (B, T, H, W) (a batch of sequences), got {tuple(x.shape)}")
    return x


def check_video_pair(pred: Any, target: Any, mask: Any = None) -> None:
    """Check a ``(B, T, H, W)`` prediction/target pair and an optional bool mask of the same shape."""
    check_video("pred", pred)
    check_like("target", target, "pred", pred)
    check_mask(mask, pred, "pred")


def check_temporal_args(threshold: float, threshold_mode: str, align: str, temporal_scales: int, decay: float) -> None:
    """Validate the hyper-parameters of temporal gradient matching."""
    check_float("threshold", threshold, low=0.0, low_inclusive=False)
    check_choice("threshold_mode", threshold_mode, THRESHOLD_MODES)
    check_choice("align", align, ALIGNS)
    check_int("temporal_scales", temporal_scales, low=1)
    check_float("decay", decay, low=0.0)


# -- alignment ------------------------------------------------------------------------------
def align_sequences(pred: Tensor, target: Tensor, valid: Tensor, scope: str) -> Tensor:
    """``s * pred + t`` with one least-squares ``(s, t)`` per sequence (one for the batch under ``"batch"``).

    ``pred``, ``target``: ``(B, T, N)`` with 0 at invalid pixels; gradients flow through ``s, t``
    (as in the authors' code). Degenerate fits follow :func:`lsq_scale_shift`.
    """
    b = pred.shape[0]
    n = pred.shape[1] * pred.shape[2]
    shape = (b, n) if scope == "image" else (1, b * n)
    fit = lsq_rows(pred.reshape(shape), target.reshape(shape), valid.reshape(shape).to(pred.dtype))
    scale, shift = per_image(fit.scale, b, scope), per_image(fit.shift, b, scope)
    return torch.where(valid, scale[:, None, None] * pred + shift[:, None, None], 0.0)


def frame_range(target: Tensor, valid: Tensor) -> Tensor:
    """``max - min`` of the valid target values of each frame, ``(B, T)``; ``-1`` for a frame without one."""
    top = torch.where(valid, target, -torch.inf).amax(dim=-1)
    low = torch.where(valid, target, torch.inf).amin(dim=-1)
    return torch.where(valid.any(dim=-1), top - low, -1.0)


# -- temporal gradient matching -------------------------------------------------------------
class TemporalTerms(NamedTuple):
    """Per row (sequence, or the batch) and temporal level: ``Σ |Δp - Δg|`` over static pixels and their count.

    ``sums``, ``counts``: ``(G, L)`` for the ``L`` strides shorter than the sequence;
    ``weights``: ``(L,)`` the level weights ``decay**k / L``.
    """

    sums: Tensor
    counts: Tensor
    weights: List[float]

    @property
    def value(self) -> Tensor:
        """Per row: ``Σ_k w_k · sums_k / counts_k`` (0 for a level without static pixels)."""
        return (safe_div(self.sums, self.counts) * self._w()).sum(dim=-1)

    def pooled(self) -> Tensor:
        """One value: every level's sums and counts pooled over the rows (the authors' "batch-based")."""
        return (safe_div(self.sums.sum(dim=0), self.counts.sum(dim=0)) * self._w()).sum()

    def _w(self) -> Tensor:
        return torch.tensor(self.weights, dtype=self.sums.dtype, device=self.sums.device)


def temporal_terms(
    pred: Tensor,
    target: Tensor,
    valid: Tensor,
    threshold: float,
    threshold_mode: str,
    absolute: bool,
    temporal_scales: int,
    decay: float,
    scope: str,
) -> TemporalTerms:
    """Temporal gradient matching sums of ``(B, T, N)`` maps (0 at invalid pixels; ``pred`` aligned).

    For stride ``s = 2**k < T``: frames ``0, s, 2s, ...``; a pixel of the pair ``(i, i + 1)``
    counts where it is valid in both frames and ``|Δg| < τ``, with ``τ = threshold`` or
    ``threshold · range(g_{i+1})`` (``threshold_mode="range"``, the authors' code).
    """
    rng = frame_range(target, valid)
    sums: List[Tensor] = []
    counts: List[Tensor] = []
    weights: List[float] = []
    frames = pred.shape[1]
    for k in range(temporal_scales):
        stride = 2**k
        if stride >= frames:
            break
        p, g, v = pred[:, ::stride], target[:, ::stride], valid[:, ::stride]
        dp, dg = p[:, 1:] - p[:, :-1], g[:, 1:] - g[:, :-1]
        pair = v[:, 1:] & v[:, :-1]
        if threshold_mode == "range":
            tau = threshold * rng[:, ::stride][:, 1:, None]
            static = pair & (dg.abs() < tau)
        else:
            static = pair & (dg.abs() < threshold)
        r = (dp.abs() - dg.abs()).abs() if absolute else (dp - dg).abs()
        s = torch.where(static, r, 0.0).sum(dim=(1, 2))
        c = static.sum(dim=(1, 2)).to(pred.dtype)
        sums.append(s.sum(dim=0, keepdim=True) if scope != "image" else s)
        counts.append(c.sum(dim=0, keepdim=True) if scope != "image" else c)
        weights.append(decay**k)
    if not sums:  # a single frame: no temporal pair (0, still connected to the graph)
        zero = pred.sum(dim=(1, 2)) * 0.0 if scope == "image" else pred.sum().reshape(1) * 0.0
        return TemporalTerms(zero[:, None], zero[:, None].detach(), [0.0])
    n = float(len(weights))
    return TemporalTerms(torch.stack(sums, dim=-1), torch.stack(counts, dim=-1), [w / n for w in weights])


def video_rows(pred: Tensor, target: Tensor, mask: Optional[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """``(B, T, H, W)`` -> ``(B, T, H*W)`` in the compute dtype, 0 at invalid pixels, and the mask."""
    dtype = compute_dtype(pred, target)
    b, t, h, w = pred.shape
    p, g = pred.to(dtype).reshape(b, t, h * w), target.to(dtype).reshape(b, t, h * w)
    if mask is None:
        return p, g, torch.ones_like(p, dtype=torch.bool)
    valid = mask.reshape(b, t, h * w)
    return torch.where(valid, p, 0.0), torch.where(valid, g, 0.0), valid
