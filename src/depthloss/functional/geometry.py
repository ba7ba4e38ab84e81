r"""Camera geometry: back-projection of depth maps and surface normals from depth.

A pinhole camera with intrinsics :math:`K = [[f_x, 0, c_x], [0, f_y, c_y], [0, 0, 1]]` in pixels
(pixel centres at integer coordinates, ``u`` along W, ``v`` along H) maps pixel ``(u, v)`` of
depth ``z`` to the camera-frame point

.. math:: P(u, v) = z \cdot K^{-1} [u, v, 1]^T = \left(\frac{(u - c_x) z}{f_x}, \frac{(v - c_y) z}{f_y}, z\right).

``K`` is accepted as a ``(B, 3, 3)`` tensor, a ``(B, 4)`` tensor of ``(fx, fy, cx, cy)`` or a
tuple ``(fx, fy, cx, cy)`` of numbers (or 0-dim / ``(B,)`` tensors) shared by the batch.
Everything is dense: invalid pixels are replaced before any non-linearity and validity is
returned as a mask.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from depthloss._checks import check_choice, check_depth_map, check_mask
from depthloss.functional._plumbing import autocast_off, compute_dtype, safe_sqrt

__all__ = ["Intrinsics", "Normals", "backproject", "check_intrinsics", "depth_to_normals", "intrinsics_params"]

#: ``(B, 3, 3)`` or ``(B, 4)`` tensor, or ``(fx, fy, cx, cy)``
Intrinsics = Union[Tensor, Sequence[Union[float, Tensor]]]
Stencil = Literal["central", "forward"]
STENCILS = ("central", "forward")

K_SHAPES = "a (B, 3, 3) tensor, a (B, 4) tensor of (fx, fy, cx, cy) or a tuple (fx, fy, cx, cy)"


class Normals(NamedTuple):
    """Unit normals ``(B, 3, H, W)`` (0 where not valid) and their validity (the depth map's shape)."""

    normals: Tensor
    valid: Tensor


def check_intrinsics(K: Any, ref: Tensor, name: str = "K") -> Intrinsics:
    """Check the camera intrinsics against a depth map ``ref`` (metadata only: no value is read); return them."""
    batch = ref.shape[0]
    if K is None:
        raise TypeError(f"{name} (camera intrinsics) is required: {K_SHAPES}, in pixels of the input resolution")
    if isinstance(K, Tensor):
        if not K.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {K.dtype}")
        if K.device != ref.device:
            raise ValueError(
                f"{name} must be on the same device as the depth maps: expected {ref.device}, got {K.device}"
            )
        shape = tuple(K.shape)
        ok = (K.dim() == 3 and shape[1:] == (3, 3)) or (K.dim() == 2 and shape[1] == 4)
        if not ok or shape[0] != batch:
            raise ValueError(f"{name} must be {K_SHAPES} with B = {batch}, got a tensor of shape {shape}")
        return K
    if isinstance(K, (tuple, list)):
        if len(K) != 4:
            raise ValueError(f"{name} as a sequence must hold 4 values (fx, fy, cx, cy), got {len(K)}")
        for v in K:
            if isinstance(v, Tensor):
                if not (v.dim() == 0 or (v.dim() == 1 and v.shape[0] == batch)):
                    raise ValueError(
                        f"{name} entries must be numbers, 0-dim or (B,) tensors, got a tensor of shape {tuple(v.shape)}"
                    )
            elif isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"{name} entries must be numbers or tensors, got {type(v).__name__}")
        return tuple(K)
    raise TypeError(f"{name} must be {K_SHAPES}, got {type(K).__name__}")


def intrinsics_params(K: Intrinsics, batch: int, dtype: torch.dtype, device: torch.device) -> Tuple[Tensor, ...]:
    """``(fx, fy, cx, cy)`` as ``(B, 1, 1)`` tensors in ``dtype`` (``K`` already checked)."""
    if isinstance(K, Tensor):
        k = K.to(dtype)
        if k.dim() == 3:
            values = (k[:, 0, 0], k[:, 1, 1], k[:, 0, 2], k[:, 1, 2])
        else:
            values = (k[:, 0], k[:, 1], k[:, 2], k[:, 3])
        return tuple(v.reshape(batch, 1, 1) for v in values)
    out = []
    for v in K:
        t = (
            v.to(device=device, dtype=dtype)
            if isinstance(v, Tensor)
            else torch.full((), float(v), dtype=dtype, device=device)
        )
        out.append(t.reshape(-1, 1, 1).expand(batch, 1, 1))
    return tuple(out)


def _points(z: Tensor, K: Intrinsics) -> Tensor:
    """``(B, 3, H, W)`` points of a finite ``(B, H, W)`` depth map."""
    b, h, w = z.shape
    fx, fy, cx, cy = intrinsics_params(K, b, z.dtype, z.device)
    u = torch.arange(w, dtype=z.dtype, device=z.device).reshape(1, 1, w)
    v = torch.arange(h, dtype=z.dtype, device=z.device).reshape(1, h, 1)
    x = (u - cx) / fx * z
    y = (v - cy) / fy * z
    return torch.stack((x, y, z), dim=1)


@autocast_off
def backproject(depth: Tensor, K: Intrinsics) -> Tensor:
    r"""Camera-frame 3D points of a depth map: :math:`P = z\,K^{-1}[u, v, 1]^T`.

    Args:
        depth: ``(B, 1, H, W)`` or ``(B, H, W)`` metric depth.
        K: ``(B, 3, 3)`` or ``(B, 4)`` tensor, or ``(fx, fy, cx, cy)`` (pixels).

    Returns:
        ``(B, 3, H, W)`` points ``(x, y, z)`` in the compute dtype (at least float32).

    Example:
        >>> backproject(torch.full((1, 1, 1, 3), 2.0), (2.0, 2.0, 1.0, 0.0))[0, :, 0]
        tensor([[-1.,  0.,  1.],
                [ 0.,  0.,  0.],
                [ 2.,  2.,  2.]])
    """
    check_depth_map("depth", depth)
    check_intrinsics(K, depth)
    z = depth.to(compute_dtype(depth)).reshape(depth.shape[0], depth.shape[-2], depth.shape[-1])
    return _points(z, K)


def _normals_from_points(points: Tensor, valid: Tensor, stencil: str) -> Normals:
    """Unit normals of ``(B, 3, H, W)`` finite points on the ``(B, H, W)`` valid pixels."""
    if stencil == "central":
        # d/du and d/dv on the interior (H - 2, W - 2); the stencil: the 4 neighbours and the centre
        du = points[:, :, 1:-1, 2:] - points[:, :, 1:-1, :-2]
        dv = points[:, :, 2:, 1:-1] - points[:, :, :-2, 1:-1]
        ok = valid[:, 1:-1, 1:-1] & valid[:, 1:-1, 2:] & valid[:, 1:-1, :-2] & valid[:, 2:, 1:-1] & valid[:, :-2, 1:-1]
        centre = points[:, :, 1:-1, 1:-1]
        pad = (1, 1, 1, 1)
    else:
        # forward differences on (H - 1, W - 1); the stencil: the pixel, its right and lower neighbours
        du = points[:, :, :-1, 1:] - points[:, :, :-1, :-1]
        dv = points[:, :, 1:, :-1] - points[:, :, :-1, :-1]
        ok = valid[:, :-1, :-1] & valid[:, :-1, 1:] & valid[:, 1:, :-1]
        centre = points[:, :, :-1, :-1]
        pad = (0, 1, 0, 1)
    n = torch.linalg.cross(dv, du, dim=1)  # dv x du: toward the camera for a fronto-parallel plane
    # orient toward the camera (the origin): n . P <= 0
    facing = (n * centre).sum(dim=1, keepdim=True)
    n = torch.where(facing > 0, -n, n)
    norm = safe_sqrt((n * n).sum(dim=1, keepdim=True))
    ok = ok & (norm[:, 0] > 0)
    unit = n / torch.where(norm > 0, norm, torch.ones_like(norm))
    unit = torch.where(ok.unsqueeze(1), unit, torch.zeros_like(unit))
    h, w = points.shape[-2:]  # images smaller than the stencil: an empty interior padded, then cropped
    full = torch.nn.functional.pad(unit, pad)[:, :, :h, :w]
    return Normals(full, torch.nn.functional.pad(ok, pad, value=False)[:, :h, :w])


@autocast_off
def depth_to_normals(
    depth: Tensor, K: Intrinsics, mask: Optional[Tensor] = None, stencil: Stencil = "central"
) -> Normals:
    r"""Unit surface normals of a depth map, from cross products of differences of its 3D points.

    .. math:: n = \frac{\partial_v P \times \partial_u P}{\lVert \partial_v P \times \partial_u P \rVert},
              \qquad n \cdot P \le 0

    with :math:`P` from :func:`backproject`, :math:`\partial_u P = P(u+1, v) - P(u-1, v)`
    (``stencil="central"``) or :math:`P(u+1, v) - P(u, v)` (``"forward"``), likewise along
    ``v``; each normal is flipped to face the camera. A normal is valid where its whole stencil
    is (the pixel and its 4 neighbours, or the pixel and its right and lower neighbours), inside
    the image, and its cross product is not zero; elsewhere it is 0. Normals do not change when
    the depth is scaled (the points scale, their normal does not).

    Args:
        depth: ``(B, 1, H, W)`` or ``(B, H, W)`` metric depth (invalid pixels may hold anything).
        K: intrinsics, ``(B, 3, 3)`` or ``(B, 4)`` tensor, or ``(fx, fy, cx, cy)`` (pixels).
        mask: optional bool validity, depth's shape (default: every pixel).
        stencil: ``"central"`` (default) or ``"forward"`` differences.

    Returns:
        :class:`Normals`: ``normals`` ``(B, 3, H, W)`` and ``valid`` (depth's shape, bool).

    Example:
        >>> plane = torch.full((1, 1, 3, 3), 2.0)  # fronto-parallel: the normal faces the camera
        >>> n = depth_to_normals(plane, (1.0, 1.0, 1.0, 1.0))
        >>> n.normals[0, :, 1, 1], int(n.valid.sum())
        (tensor([ 0.,  0., -1.]), 1)
    """
    check_depth_map("depth", depth)
    check_mask(mask, depth, "depth")
    check_intrinsics(K, depth)
    check_choice("stencil", stencil, STENCILS)
    b, h, w = depth.shape[0], depth.shape[-2], depth.shape[-1]
    z = depth.to(compute_dtype(depth)).reshape(b, h, w)
    valid = torch.ones_like(z, dtype=torch.bool) if mask is None else mask.reshape(b, h, w)
    z = torch.where(valid, z, torch.ones_like(z))  # finite points everywhere: no NaN reaches a gradient
    out = _normals_from_points(_points(z, K), valid, stencil)
    return Normals(out.normals, out.valid.reshape(depth.shape))
