"""Loss modules: thin wrappers holding hyper-parameters, schedules and metrics.

Importing this package registers every loss with :mod:`depthloss.registry`.
"""

from depthloss.nn.abs_rel import AbsRelLoss
from depthloss.nn.base import DepthLoss, valid_mask
from depthloss.nn.berhu import BerHuLoss
from depthloss.nn.confidence import ConfidenceLoss
from depthloss.nn.enhanced_ssi import EnhancedSSILoss
from depthloss.nn.gaussian_nll import GaussianNLLLoss
from depthloss.nn.l1 import L1Loss
from depthloss.nn.laplace_nll import LaplaceNLLLoss
from depthloss.nn.local_ssi import LocalSSILoss
from depthloss.nn.midas import MiDaSLoss
from depthloss.nn.mse import MSELoss
from depthloss.nn.near_field_ssi_silog import NearFieldSSISilog
from depthloss.nn.progressive_ssi import ProgressiveSSILoss
from depthloss.nn.scale_adaptive import ScaleAdaptiveLoss
from depthloss.nn.silog import SILogLoss
from depthloss.nn.ssi import SSILoss
from depthloss.nn.ssi_silog import SSISilogLoss
from depthloss.nn.ssi_trim import SSITrimLoss
from depthloss.nn.supervised import SupervisedLoss

__all__ = [
    "AbsRelLoss",
    "BerHuLoss",
    "ConfidenceLoss",
    "DepthLoss",
    "EnhancedSSILoss",
    "GaussianNLLLoss",
    "L1Loss",
    "LaplaceNLLLoss",
    "LocalSSILoss",
    "MSELoss",
    "MiDaSLoss",
    "NearFieldSSISilog",
    "ProgressiveSSILoss",
    "SILogLoss",
    "SSILoss",
    "SSISilogLoss",
    "SSITrimLoss",
    "ScaleAdaptiveLoss",
    "SupervisedLoss",
    "valid_mask",
]
