"""Surface-normal loss: the angle between the normals of predicted and target depth."""

from __future__ import annotations

from typing import Literal, Optional

import torch
from torch import Tensor

from depthloss._checks import SCOPES, check_choice, check_float, check_mask, check_pair, check_reduction
from depthloss.functional._plumbing import Reduction, Scope, autocast_off, compute_dtype, reduce_images, rows, safe_div
from depthloss.functional.geometry import STENCILS, Intrinsics, Stencil, check_intrinsics, depth_to_normals

__all__ = ["check_target_normals", "normal"]

NormalKind = Literal["cosine", "angle"]


def valid_pixels(pred: Tensor, mask: Optional[Tensor]) -> Tensor:
    """The mask, or every pixel."""
    return torch.ones_like(pred, dtype=torch.bool) if mask is None else mask


def check_target_normals(target_normals: object, ref: Tensor, name: str = "target_normals") -> None:
    """Ground-truth normals: a floating ``(B, 3, H, W)`` tensor matching the depth map ``ref``."""
    if target_normals is None:
        return
    if not isinstance(target_normals, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or None, got {type(target_normals).__name__}")
    if not target_normals.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {target_normals.dtype}")
    want = (ref.shape[0], 3, ref.shape[-2], ref.shape[-1])
    if tuple(target_normals.shape) != want:
        raise ValueError(f"{name} must have shape (B, 3, H, W) = {want}, got {tuple(target_normals.shape)}")
    if target_normals.device != ref.device:
        raise ValueError(
            f"{name} must be on the same device as pred: expected {ref.device}, got {target_normals.device}"
        )


@autocast_off
def normal(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    K: Optional[Intrinsics] = None,
    kind: NormalKind = "cosine",
    stencil: Stencil = "central",
    eps: float = 1e-6,
    *,
    target_normals: Optional[Tensor] = None,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""Mean angular error between the surface normals of predicted and target depth.

    .. math:: \mathcal L_b = \frac{1}{|V_b|} \sum_{i \in V_b} e(\hat n_i \cdot n_i), \qquad
              e(c) = 1 - c \;(\text{``cosine''}) \quad\text{or}\quad
              e(c) = \arccos\big(\operatorname{clamp}(c, -1 + \epsilon, 1 - \epsilon)\big) \;(\text{``angle''})

    with :math:`\hat n, n` the unit normals of ``pred`` and ``target`` from
    :func:`~depthloss.functional.depth_to_normals` (cross products of central differences of
    the back-projected points, facing the camera), and :math:`V_b` the pixels whose stencil is
    valid in both (``mask``, inside the image). With ``target_normals`` the target's normals are
    taken from it (normalized; pixels with a zero or non-finite normal do not count) and the
    target depth is not used: validity is ``mask`` and the prediction's stencils.

    Both normals ignore the scale of their depth map, so the loss is invariant to
    ``pred -> a * pred`` (and to a common scale of both), ``a > 0``; it is blind to a constant
    depth offset only where it leaves the surface orientation unchanged (it does not in general:
    a back-projected offset bends the surface).

    Normals from cross products of differences of back-projected points are the usual
    construction (e.g. GeoNet's depth-to-normal layer, the VNL authors' normal evaluation); the
    published losses differ in the difference stencil and the error (``1 - cos`` or the angle),
    both offered here. There is no single reference implementation to reproduce. The angle uses a
    clamped ``acos`` so that its gradient stays finite at parallel normals (it is 0 there).

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)`` predicted metric depth.
        target: same shape, target metric depth.
        mask: bool validity, same shape (``None``: every pixel).
        K: required: camera intrinsics in pixels: ``(B, 3, 3)`` or ``(B, 4)`` ``(fx, fy, cx, cy)`` tensor,
            or a tuple ``(fx, fy, cx, cy)`` (a keyword: ``mask`` comes third, as in every loss).
        kind: ``"cosine"`` (default, ``1 - cos``, in [0, 2]) or ``"angle"`` (radians).
        stencil: ``"central"`` (default) or ``"forward"`` differences.
        eps: margin of the ``acos`` clamp (``kind="angle"``), default ``1e-6``.
        target_normals: optional ground-truth normals ``(B, 3, H, W)``, replacing those of ``target``.
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, ``"none"``, ``"pixel-mean"``.
        scope: ``"image"`` (default) or ``"batch"`` (one mean over the batch's valid pixels).

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Reference:
        X. Qi et al., *GeoNet: Geometric Neural Network for Joint Depth and Surface Normal
        Estimation*, CVPR 2018; W. Yin et al., *Enforcing geometric constraints of virtual
        normals for depth prediction*, ICCV 2019.

    Example:
        >>> K = (2.0, 2.0, 2.0, 2.0)
        >>> v = torch.arange(5.0).reshape(1, 1, 5, 1).expand(1, 1, 5, 5)
        >>> flat, slanted = torch.full((1, 1, 5, 5), 3.0), 3.0 + 0.5 * v  # a surface rising along v
        >>> normal(flat, flat, K=K), normal(2.0 * slanted, slanted, K=K) < 1e-6  # scale-free
        (tensor(0.), tensor(True))
        >>> normal(flat, slanted, K=K, kind="angle")  # mean angle in radians
        tensor(0.2547)
    """
    check_pair(pred, target)
    check_mask(mask, pred)
    K = check_intrinsics(K, pred)
    check_target_normals(target_normals, pred)
    check_choice("kind", kind, ("cosine", "angle"))
    check_choice("stencil", stencil, STENCILS)
    check_float("eps", eps, low=0.0, high=0.5, low_inclusive=False)
    check_reduction(reduction, scope, SCOPES, "normal")
    dtype = compute_dtype(pred, target)
    n_p, v_p = depth_to_normals(pred.to(dtype), K, mask, stencil)
    if target_normals is None:
        n_g, v_g = depth_to_normals(target.to(dtype), K, mask, stencil)
    else:
        g = target_normals.to(dtype)
        ok = torch.isfinite(g).all(dim=1)
        g = torch.where(ok.unsqueeze(1), g, torch.zeros_like(g))
        sq = (g * g).sum(dim=1, keepdim=True)
        ok = ok & (sq[:, 0] > 0)
        n_g = g / torch.sqrt(torch.where(sq > 0, sq, torch.ones_like(sq)))
        v_g = ok.reshape(pred.shape) if mask is None else ok.reshape(pred.shape) & mask
    valid = v_p & v_g
    cos = (n_p * n_g).sum(dim=1).reshape(pred.shape)
    if kind == "cosine":
        err = (1.0 - cos).clamp(min=0.0)  # rounding may put cos a little above 1
    else:
        err = torch.acos(cos.clamp(-1.0 + eps, 1.0 - eps))
    err = torch.where(valid, err, torch.zeros_like(err))
    r, v = rows(err, scope), rows(valid, scope)
    count = v.sum(dim=-1)
    values = safe_div(r.sum(dim=-1), count.to(r.dtype))
    if reduction == "pixel-mean":  # images weighted by their valid pixels (the mask's), as every loss
        return reduce_images(values, rows(valid_pixels(pred, mask), scope).sum(dim=-1), reduction)
    return reduce_images(values, count, reduction)
