"""The math of depthloss: one file per loss, plus the building blocks they name.

Every loss is written once, in plain differentiable torch ops, in the file named for it
(``silog.py``, ``scale_adaptive.py``, ...). The building blocks live in a few modules
named by concept:

- :mod:`~depthloss.functional.statistics`: masked moments, medians, MAD normalization,
  trims, least-squares scale and shift;
- :mod:`~depthloss.functional.image`: Sobel and forward-difference derivatives, gradient
  matching, pyramids of dense and sparse maps;
- :mod:`~depthloss.functional.depth`: depth <-> inverse depth, near-field weights;
- :mod:`~depthloss.functional.geometry`: back-projection with intrinsics, normals from depth;
- :mod:`~depthloss.functional.derivatives`: Scharr and Laplace stencils, the masked 2x pyramid
  and multi-scale derivative errors (Depth Pro), ZoeDepth's gradient field;
- :mod:`~depthloss.functional.groups`: contexts (depth bins, windows) and group-wise
  median/MAD normalization (HDN);
- :mod:`~depthloss.functional.sampling`: fixed-count, sync-free sampling of pixels, pairs,
  triplets and windows;
- :mod:`~depthloss.functional.video`: ``(B, T, H, W)`` sequences, per-sequence alignment,
  temporal gradient matching;
- :mod:`~depthloss.functional.schedules`: hyper-parameters that move with training progress.

Conventions shared by every kernel (see the README):

- maps are ``(B, 1, H, W)`` or ``(B, H, W)``; ``mask`` is bool of the same shape, ``weights``
  non-negative floats of the same shape; ``B = 0`` is valid input;
- statistics (medians, MADs, moments, fits, trims) are per image over valid pixels, or
  over the whole batch with ``scope="batch"``;
- ``reduction="mean"`` averages over images with at least one valid pixel (0 if none),
  ``"sum"`` sums and ``"none"`` returns ``(B,)``;
- no boolean indexing, ``.item()`` or branching on values: every kernel runs under
  ``torch.compile(fullgraph=True)`` and never synchronizes the host;
- invalid pixels are replaced (``torch.where``) before ``log``, division and ``sqrt``: they
  get exactly zero gradient, and an image without valid pixels contributes 0 with a zero
  gradient;
- fp16/bf16 inputs are computed in float32 with autocast disabled; float64 stays float64;
- inputs are never modified.
"""

from depthloss.functional.abs_rel import abs_rel
from depthloss.functional.berhu import berhu
from depthloss.functional.confidence import confidence_loss
from depthloss.functional.depth import depth_to_inv, inv_to_depth, near_field_weights
from depthloss.functional.depth_pro import depth_pro
from depthloss.functional.enhanced_ssi import enhanced_ssi
from depthloss.functional.gaussian_nll import gaussian_nll
from depthloss.functional.geometry import Normals, backproject, depth_to_normals
from depthloss.functional.grad_clip import clamp_grad
from depthloss.functional.grad_l1 import grad_l1
from depthloss.functional.hdn import hdn
from depthloss.functional.hdn_random import hdn_random
from depthloss.functional.image import (
    Gradients,
    SparseDepth,
    downsample,
    downsample_sparse,
    gradient_matching,
    sobel,
    sobel_mask,
)
from depthloss.functional.l1 import l1
from depthloss.functional.laplace_nll import laplace_nll
from depthloss.functional.local_ssi import local_ssi
from depthloss.functional.mage import mage
from depthloss.functional.male import male
from depthloss.functional.midas import midas
from depthloss.functional.mse import mse
from depthloss.functional.msge import msge
from depthloss.functional.near_field_ssi_silog import NearFieldConfig, near_field_ssi_silog
from depthloss.functional.normal import normal
from depthloss.functional.progressive_ssi import progressive_ssi
from depthloss.functional.ranking import ranking, ranking_pairs
from depthloss.functional.scale_adaptive import ScaleAdaptiveConfig, scale_adaptive
from depthloss.functional.schedules import scale_weights, schedule
from depthloss.functional.silog import silog
from depthloss.functional.ssi import ssi
from depthloss.functional.ssi_lsq import ssi_lsq
from depthloss.functional.ssi_mae import ssi_mae
from depthloss.functional.ssi_silog import ssi_silog
from depthloss.functional.ssi_trim import ssi_trim
from depthloss.functional.statistics import (
    MadNormalized,
    ScaleShift,
    lsq_scale_shift,
    mad_normalize,
    masked_mean,
    masked_median,
    masked_var,
)
from depthloss.functional.temporal_gradient_matching import temporal_gradient_matching
from depthloss.functional.video_depth import video_depth
from depthloss.functional.vnl import vnl, vnl_samples

__all__ = [
    "Gradients",
    "MadNormalized",
    "NearFieldConfig",
    "Normals",
    "ScaleAdaptiveConfig",
    "ScaleShift",
    "SparseDepth",
    "abs_rel",
    "backproject",
    "berhu",
    "clamp_grad",
    "confidence_loss",
    "depth_pro",
    "depth_to_inv",
    "depth_to_normals",
    "downsample",
    "downsample_sparse",
    "enhanced_ssi",
    "gaussian_nll",
    "grad_l1",
    "gradient_matching",
    "hdn",
    "hdn_random",
    "inv_to_depth",
    "l1",
    "laplace_nll",
    "local_ssi",
    "lsq_scale_shift",
    "mad_normalize",
    "mage",
    "male",
    "masked_mean",
    "masked_median",
    "masked_var",
    "midas",
    "mse",
    "msge",
    "near_field_ssi_silog",
    "near_field_weights",
    "normal",
    "progressive_ssi",
    "ranking",
    "ranking_pairs",
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
    "temporal_gradient_matching",
    "video_depth",
    "vnl",
    "vnl_samples",
]
