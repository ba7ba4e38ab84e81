"""Depth Pro's mean absolute gradient error (MAGE) on inverse depth."""

from __future__ import annotations

from typing import Optional

from torch import Tensor

from depthloss.functional._plumbing import Reduction, Scope, autocast_off
from depthloss.functional.derivatives import multiscale_derivative_loss

__all__ = ["mage"]


@autocast_off
def mage(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    num_scales: int = 6,
    *,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""Depth Pro's mean absolute gradient error :math:`\mathcal L_{S,1,M}` (``MAGE``).

    .. math:: \mathcal L = \frac{1}{M} \sum_{j=0}^{M-1} \frac{1}{N_j} \sum_{i \in S_j}
              |\partial_x r^j_i| + |\partial_y r^j_i|,
              \qquad r = \text{pred} - \text{target}

    with level ``j`` of the pyramid made by blurring and downsampling by 2 (here: the 2x2 mean
    of the valid pixels, pred and target pooled over the same pixels, so the pyramid of ``r`` is
    the difference of the two pyramids), ``S_j`` the positions of level ``j`` whose whole
    3x3 Scharr stencil is valid and ``N_j = |S_j|`` (a level without one adds 0; the sum is still
    divided by ``M``). The derivatives are the normalized Scharr taps ``[-3 0 3; -10 0 10; -3 0 3] / 32`` and their transpose.

    **Reference and what the paper leaves open.** A. Bochkovskii et al., *Depth Pro: Sharp
    Monocular Metric Depth in Less Than a Second*, ICLR 2025 (arXiv:2410.02073), Sec. 3.2: losses on
    canonical inverse depth, :math:`\mathcal L_{\mathrm{MAGE}} = \mathcal L_{S,1,6}`. The authors
    released no training code (apple/ml-depth-pro holds inference and evaluation only), so the
    blur kernel, the stencil normalization and how the two components of an absolute gradient error are combined (here: the sum of their absolute values) are not published; the choices above are
    depthloss's and are documented as such. Pass canonical inverse depth (inverse depth times
    ``f_px / w``) to reproduce the paper's scale.

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)`` (canonical) inverse depth.
        target: same shape.
        mask: bool, same shape; ``None`` means every pixel is valid.
        num_scales: pyramid levels ``M >= 1`` (default 6, the paper's).
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, ``"none"`` (``(B,)``),
            or ``"pixel-mean"``: every level pooled over the batch (``Σ_b`` sums over ``Σ_b N_j``).
        scope: ``"image"`` (default) or ``"batch"`` (the same pooling, as one value).

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Example:
        >>> target = torch.arange(36.0).reshape(1, 6, 6) / 4.0 + 1.0
        >>> mage(target + 0.25, target)  # a constant offset has no derivative
        tensor(0.)
        >>> pred = target.clone()
        >>> pred[:, 2, 2] += 0.5  # one wrong pixel
        >>> mage(pred, target, num_scales=2)
        tensor(0.0312)
    """
    return multiscale_derivative_loss(pred, target, mask, "scharr", 1, num_scales, reduction, scope, "mage")
