"""Pure, batched, mask-weighted depth-loss kernels.

Conventions shared by every kernel (see the README):

- maps are ``(B, 1, H, W)`` or ``(B, H, W)``; ``mask`` is bool of the same shape, ``weights``
  non-negative floats of the same shape;
- statistics (medians, MADs, moments, fits, trims) are per image over valid pixels, or
  over the whole batch with ``scope="batch"``;
- ``reduction="mean"`` averages over images with at least one valid pixel (0 if none),
  ``"sum"`` sums and ``"none"`` returns ``(B,)``;
- no boolean indexing, ``.item()`` or branching on values: every kernel runs under
  ``torch.compile(fullgraph=True)`` and never synchronizes the host;
- invalid pixels are sanitized before ``log``, division and ``sqrt``; they get exactly zero
  gradient, and an image without valid pixels contributes 0 with a zero gradient;
- fp16/bf16 inputs are computed in float32 with autocast disabled; float64 stays float64;
- inputs are never modified.
"""

from depthloss.functional.conversions import depth_to_inv, inv_to_depth
from depthloss.functional.grad_clip import clamp_grad
from depthloss.functional.gradients import Gradients, gradient_matching, sobel, sobel_mask
from depthloss.functional.lsq import ScaleShift, lsq_scale_shift
from depthloss.functional.median import MadNormalized, mad_normalize, masked_median
from depthloss.functional.midas import midas, ssi_trim
from depthloss.functional.moments import masked_mean, masked_var
from depthloss.functional.near_field import NearFieldConfig, near_field_ssi_silog
from depthloss.functional.pointwise import abs_rel, berhu, l1, mse
from depthloss.functional.pyramid import SparseDepth, downsample, downsample_sparse
from depthloss.functional.scale_adaptive import ScaleAdaptiveConfig, scale_adaptive
from depthloss.functional.schedules import scale_weights, schedule
from depthloss.functional.silog import silog
from depthloss.functional.ssi import ssi, ssi_lsq, ssi_mae
from depthloss.functional.ssi_silog import ssi_silog
from depthloss.functional.weighting import near_field_weights

__all__ = [
    "Gradients",
    "MadNormalized",
    "NearFieldConfig",
    "ScaleAdaptiveConfig",
    "ScaleShift",
    "SparseDepth",
    "abs_rel",
    "berhu",
    "clamp_grad",
    "depth_to_inv",
    "downsample",
    "downsample_sparse",
    "gradient_matching",
    "inv_to_depth",
    "l1",
    "lsq_scale_shift",
    "mad_normalize",
    "masked_mean",
    "masked_median",
    "masked_var",
    "midas",
    "mse",
    "near_field_ssi_silog",
    "near_field_weights",
    "scale_adaptive",
    "scale_weights",
    "schedule",
    "silog",
    "sobel",
    "sobel_mask",
    "ssi",
    "ssi_lsq",
    "ssi_mae",
    "ssi_silog",
    "ssi_trim",
]
