"""Virtual normal loss (Yin et al., ICCV 2019): normals of random point triplets."""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import Tensor

from depthloss._checks import SCOPES, check_float, check_int, check_mask, check_pair, check_reduction
from depthloss.functional._plumbing import (
    Reduction,
    Scope,
    autocast_off,
    compute_dtype,
    reduce_images,
    rows,
    safe_div,
    safe_sqrt,
)
from depthloss.functional.geometry import Intrinsics, backproject, check_intrinsics
from depthloss.functional.sampling import check_generator, hashed_uniform, pick_valid, uniform
from depthloss.functional.statistics import trimmed_sum_rows

__all__ = ["TripletTerms", "vnl", "vnl_num_samples", "vnl_samples", "vnl_terms"]


def vnl_num_samples(height: int, width: int, sample_ratio: float) -> int:
    """The authors' triplet count ``int(sample_ratio * H * W)`` (ratio applied to 6 decimal places)."""
    return height * width * round(sample_ratio * 1_000_000) // 1_000_000


def vnl_samples(
    valid: Tensor,
    num_samples: int,
    generator: Optional[torch.Generator] = None,
    seed: Optional[int] = None,
) -> Tensor:
    """``num_samples`` triplets of flat pixel indices per image, uniform with replacement over its valid pixels.

    Inverse-CDF sampling on the running count of valid pixels (as
    :func:`~depthloss.functional.sampling.sample_valid`): no host sync, a fixed count. An image
    without valid pixels gives index 0 (its triplets carry zero weight in :func:`vnl`). With
    ``seed`` the draws are :func:`hashed_uniform` values shared by every image (the authors, too,
    use one set of indices for the batch), so an image's triplets do not depend on the rest of the
    batch or on the call; otherwise ``torch.rand`` with ``generator`` (or the global RNG).

    Args:
        valid: ``(B, 1, H, W)``, ``(B, H, W)`` or ``(B, N)`` bool.
        num_samples: triplets per image, ``>= 0``.
        generator: optional ``torch.Generator`` on ``valid``'s device.
        seed: optional int: deterministic, generator-free draws.

    Returns:
        ``(B, num_samples, 3)`` int64 flat indices into ``H * W``.

    Example:
        >>> valid = torch.tensor([[[True, False], [False, True]]])
        >>> s = vnl_samples(valid, 4, seed=0)
        >>> s.shape, bool(valid.reshape(1, -1).gather(1, s.reshape(1, -1)).all())
        (torch.Size([1, 4, 3]), True)
    """
    check_generator(generator, valid)
    if generator is not None and seed is not None:
        raise ValueError("pass generator or seed, not both (seed: generator-free fixed draws)")
    b = valid.shape[0]
    n_pix = valid.shape[-1] * (valid.shape[-2] if valid.dim() > 2 else 1)
    v = valid.reshape(b, n_pix)
    if seed is not None:  # the same uniforms for every image (independent of the batch)
        u = hashed_uniform((num_samples * 3,), v, seed).expand(b, num_samples * 3)
    else:
        u = uniform((b, num_samples * 3), v, generator, torch.float64)
    return pick_valid(v, u).index.reshape(b, num_samples, 3)


class TripletTerms(NamedTuple):
    """Per-triplet ``L1`` normal errors ``(B, S)``, which triplets count (bool), and the gt/pred unit normals."""

    error: Tensor
    keep: Tensor
    normal_target: Tensor
    normal_pred: Tensor


def _gather(points: Tensor, index: Tensor) -> Tensor:
    """``(B, 3, HW)`` points at ``(B, S, 3)`` indices -> ``(B, 3, S, 3)`` (coordinate, triplet, corner)."""
    b, s = index.shape[0], index.shape[1]
    flat = index.reshape(b, 1, s * 3).expand(b, 3, s * 3)
    return points.gather(2, flat).reshape(b, 3, s, 3)


def _unit(n: Tensor) -> Tensor:
    """``n / |n|`` over dim 1, 0 where ``|n| = 0`` (the authors' ``norm + 0.01`` gives the same 0)."""
    norm = safe_sqrt((n * n).sum(dim=1, keepdim=True))
    return n / torch.where(norm > 0, norm, torch.ones_like(norm))


def vnl_terms(
    pred: Tensor,
    target: Tensor,
    K: Intrinsics,
    valid: Tensor,
    samples: Tensor,
    delta_cos: float,
    delta_diff: float,
    delta_z: float,
) -> TripletTerms:
    """The virtual normals of the sampled triplets and the authors' rejection of degenerate ones."""
    b, n_pix = pred.shape[0], pred.shape[-2] * pred.shape[-1]
    dtype = compute_dtype(pred, target)
    v = valid.reshape(b, n_pix)
    p = torch.where(valid, pred.to(dtype), 1.0)  # finite everywhere before back-projection
    t = torch.where(valid, target.to(dtype), 1.0)
    pw_p = backproject(p, K).reshape(b, 3, n_pix)
    pw_g = backproject(t, K).reshape(b, 3, n_pix)
    gp, gg = _gather(pw_p, samples), _gather(pw_g, samples)  # (B, 3, S, 3)
    s = samples.shape[1]
    corners_ok = v.gather(1, samples.reshape(b, s * 3)).reshape(b, s, 3).all(dim=-1)
    # -- the authors' filter_mask, on the target points --------------------------------------
    # decided in float64 on the detached target, so the kept triplets do not depend on the
    # precision the loss computes in (thresholds of cosines and lengths; no gradient flows here)
    gc = _gather(backproject(t.detach().to(torch.float64), K).reshape(b, 3, n_pix), samples)
    d12, d13, d23 = gc[..., 1] - gc[..., 0], gc[..., 2] - gc[..., 0], gc[..., 2] - gc[..., 1]  # (B, 3, S)
    diffs = torch.stack((d12, d13, d23), dim=-1).permute(0, 2, 3, 1)  # (B, S, 3 vectors, 3 xyz)
    energy = diffs @ diffs.transpose(-1, -2)
    length = torch.linalg.vector_norm(diffs, dim=-1)
    cosines = energy / (length.unsqueeze(-1) * length.unsqueeze(-2) + 1e-8)
    colinear = ((cosines > delta_cos) | (cosines < -delta_cos)).sum(dim=(-1, -2)) > 3
    positive = (gc[:, 2] > delta_z).all(dim=-1)  # (B, S): every corner in front of the camera
    small = diffs.abs() < delta_diff  # (B, S, vector, xyz)
    near = small.any(dim=2).all(dim=-1)  # in each of x, y and z some difference is small
    keep = corners_ok & positive & ~(near | colinear)
    # -- virtual normals and their L1 difference ----------------------------------------------
    n_g = _unit(torch.linalg.cross(gg[..., 1] - gg[..., 0], gg[..., 2] - gg[..., 0], dim=1))
    n_p = _unit(torch.linalg.cross(gp[..., 1] - gp[..., 0], gp[..., 2] - gp[..., 0], dim=1))
    err = (n_g - n_p).abs().sum(dim=1)
    return TripletTerms(torch.where(keep, err, torch.zeros_like(err)), keep, n_g, n_p)


@autocast_off
def vnl(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    K: Optional[Intrinsics] = None,
    num_samples: Optional[int] = None,
    sample_ratio: float = 0.15,
    delta_cos: float = 0.867,
    delta_diff: float = 0.005,
    delta_z: float = 1e-4,
    trim: float = 0.0,
    *,
    samples: Optional[Tensor] = None,
    generator: Optional[torch.Generator] = None,
    seed: Optional[int] = None,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""Virtual normal loss: L1 distance between the unit normals of random point triplets.

    For each image, ``S`` triplets :math:`(A, B, C)` of valid pixels are drawn uniformly with
    replacement (:func:`vnl_samples`), back-projected with ``K`` in both depth maps, and

    .. math:: n = \frac{\vec{AB} \times \vec{AC}}{\lVert \vec{AB} \times \vec{AC} \rVert}, \qquad
              \mathcal L_b = \frac{1}{|T_b|} \sum_{t \in T_b} \lVert \hat n_t - n_t \rVert_1

    over the kept triplets :math:`T_b`: the authors' criteria on the *target* points reject a
    triplet when two of its edges :math:`\vec{AB}, \vec{AC}, \vec{BC}` are nearly parallel
    (:math:`|\cos| >` ``delta_cos``, 30 degrees), when in each of x, y and z some edge is
    shorter than ``delta_diff`` (metres), or when a corner has depth ``<= delta_z``. Rejected
    triplets carry zero weight (never indexed away): shapes are fixed, nothing syncs.

    ``S = int(sample_ratio * H * W)`` (authors: 0.15) unless ``num_samples`` is given. The loss
    ignores ``pred -> a * pred`` (normals of scaled points), and a common scale of both maps
    wherever it does not move a triplet across the metric thresholds ``delta_diff``/``delta_z``
    (exactly with ``delta_diff = delta_z = 0``).

    **Differences from the authors' code** (``lib/models/VNL_loss.py``), and how to reproduce it:

    - triplets are drawn among *valid* pixels (the authors draw over all pixels and reject
      invalid ones: the same distribution given validity, with ``S`` usable triplets instead of
      fewer), independently per image (the authors share one set of indices over the batch; so
      do the ``seed`` draws);
    - the loss is a mean per image; the authors pool the batch (``scope="batch"``) and, after
      sorting, drop the *smallest* 25 % of the errors (``loss[int(0.25 n):]`` keeps the largest
      75 %): ``trim=0.25``. The paper has neither; the default is the paper's mean;
    - ``x, y`` use ``K``'s principal point (the authors: ``W // 2, H // 2``) and ``z`` rather
      than ``|z|`` (valid depths are positive); a zero normal is 0, as the authors' ``+0.01``
      gives;
    - the authors replace a predicted depth of exactly 0 by ``1e-4``; here the module's
      ``min_depth`` clamp is the tool for that.

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)`` predicted metric depth.
        target: same shape, target metric depth.
        mask: bool validity, same shape (``None``: every pixel).
        K: required: intrinsics in pixels: ``(B, 3, 3)``/``(B, 4)`` tensor or ``(fx, fy, cx, cy)``.
        num_samples: triplets per image (default: ``int(sample_ratio * H * W)``).
        sample_ratio: triplets per pixel when ``num_samples`` is ``None`` (default 0.15).
        delta_cos: colinearity threshold on ``|cos|`` of two edges (default 0.867).
        delta_diff: per-coordinate closeness threshold in metres (default 0.005, the value the
            authors pass; their constructor default 0.01 is overridden in their call).
        delta_z: minimum target depth of a corner (default 1e-4).
        trim: fraction of the *smallest* triplet errors dropped (default 0; authors: 0.25).
        samples: ``(B, S, 3)`` int64 flat pixel indices (from :func:`vnl_samples`) instead of a
            draw; triplets touching an invalid pixel get zero weight.
        generator: ``torch.Generator`` for the draw (not traceable by ``torch.compile``: compile
            without it, or with ``seed``, or pass ``samples``).
        seed: int: generator-free deterministic draws (:func:`hashed_uniform`), the same every call.
        reduction: ``"mean"`` over images with a kept triplet, ``"sum"``, ``"none"``, ``"pixel-mean"``
            (weighted by kept triplets).
        scope: ``"image"`` (default) or ``"batch"`` (one mean, and one trim, over the batch).

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Reference:
        W. Yin, Y. Liu, C. Shen, Y. Yan, *Enforcing geometric constraints of virtual normals for
        depth prediction*, ICCV 2019; authors' code
        ``YvanYin/VNL_Monocular_Depth_Prediction``, ``lib/models/VNL_loss.py``.

    Example:
        >>> K = (4.0, 4.0, 3.5, 3.5)
        >>> u = torch.arange(8.0).reshape(1, 1, 1, 8).expand(1, 1, 8, 8)
        >>> target = 2.0 + 0.1 * u
        >>> vnl(3.0 * target, target, K=K, seed=0) < 1e-6  # a scaled prediction has the same normals
        tensor(True)
        >>> vnl(torch.full_like(target, 2.0), target, K=K, seed=0)
        tensor(0.1886)
    """
    check_pair(pred, target)
    check_mask(mask, pred)
    K = check_intrinsics(K, pred)
    check_generator(generator, pred)
    if num_samples is not None:
        check_int("num_samples", num_samples, low=0)
    check_float("sample_ratio", sample_ratio, low=0.0, high=1e3)
    check_float("delta_cos", delta_cos, low=0.0, high=1.0)
    check_float("delta_diff", delta_diff, low=0.0)
    check_float("delta_z", delta_z, low=0.0)
    check_float("trim", trim, low=0.0, high=1.0, high_inclusive=False)
    if seed is not None:
        check_int("seed", seed, low=0)
    check_reduction(reduction, scope, SCOPES, "vnl")
    b, h, w = pred.shape[0], pred.shape[-2], pred.shape[-1]
    valid = torch.ones_like(pred, dtype=torch.bool) if mask is None else mask
    if samples is None:
        s = vnl_num_samples(h, w, sample_ratio) if num_samples is None else num_samples
        samples = vnl_samples(valid, s, generator, seed)
    else:
        if not isinstance(samples, Tensor) or samples.dtype != torch.int64:
            raise TypeError("samples must be an int64 tensor of flat pixel indices (see vnl_samples)")
        if samples.dim() != 3 or samples.shape[0] != b or samples.shape[2] != 3:
            raise ValueError(f"samples must have shape (B, S, 3) with B = {b}, got {tuple(samples.shape)}")
        samples = samples.clamp(0, max(h * w - 1, 0))
    terms = vnl_terms(pred, target, K, valid, samples, delta_cos, delta_diff, delta_z)
    err, keep = rows(terms.error, scope), rows(terms.keep, scope)
    count = keep.sum(dim=-1)
    if trim > 0.0:
        # drop the smallest ``trim`` fraction: keep the largest = the smallest of ``-err``
        t = trimmed_sum_rows(-err, keep, count, trim)
        values = safe_div(-t.kept_sum, t.keep.to(err.dtype))
    else:
        values = safe_div(err.sum(dim=-1), count.to(err.dtype))
    if reduction == "pixel-mean":  # images weighted by their valid pixels (the mask's), as every loss
        return reduce_images(values, rows(valid, scope).sum(dim=-1), reduction)
    return reduce_images(values, count, reduction)
