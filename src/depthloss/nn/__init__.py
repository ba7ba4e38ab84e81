"""Loss modules: thin wrappers holding hyper-parameters, schedules and metrics.

Importing this package registers every loss with :mod:`depthloss.registry`.
"""

from depthloss.nn.base import DepthLoss, valid_mask
from depthloss.nn.midas import MiDaSLoss, SSITrimLoss
from depthloss.nn.near_field import NearFieldSSISilog
from depthloss.nn.pointwise import AbsRelLoss, BerHuLoss, L1Loss, MSELoss
from depthloss.nn.scale_adaptive import ScaleAdaptiveLoss
from depthloss.nn.silog import SILogLoss
from depthloss.nn.ssi import EnhancedSSILoss, ProgressiveSSILoss, SSILoss, SSISilogLoss
from depthloss.nn.supervised import SupervisedLoss

__all__ = [
    "AbsRelLoss",
    "BerHuLoss",
    "DepthLoss",
    "EnhancedSSILoss",
    "L1Loss",
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
