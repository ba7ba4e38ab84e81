"""Loss modules: thin wrappers holding hyper-parameters, schedules and metrics.

Importing this package registers every loss with :mod:`depthloss.registry`.
"""

from depthloss.nn.abs_rel import AbsRelLoss
from depthloss.nn.base import DepthLoss, valid_mask
from depthloss.nn.berhu import BerHuLoss
from depthloss.nn.enhanced_ssi import EnhancedSSILoss
from depthloss.nn.l1 import L1Loss
from depthloss.nn.midas import MiDaSLoss
from depthloss.nn.mse import MSELoss
from depthloss.nn.near_field_ssi_silog import NearFieldSSISilog
from depthloss.nn.normal import NormalLoss
from depthloss.nn.progressive_ssi import ProgressiveSSILoss
from depthloss.nn.scale_adaptive import ScaleAdaptiveLoss
from depthloss.nn.silog import SILogLoss
from depthloss.nn.ssi import SSILoss
from depthloss.nn.ssi_silog import SSISilogLoss
from depthloss.nn.ssi_trim import SSITrimLoss
from depthloss.nn.supervised import SupervisedLoss
from depthloss.nn.vnl import VNLLoss

__all__ = [
    "AbsRelLoss",
    "BerHuLoss",
    "DepthLoss",
    "EnhancedSSILoss",
    "L1Loss",
    "MSELoss",
    "MiDaSLoss",
    "NearFieldSSISilog",
    "NormalLoss",
    "ProgressiveSSILoss",
    "SILogLoss",
    "SSILoss",
    "SSISilogLoss",
    "SSITrimLoss",
    "ScaleAdaptiveLoss",
    "SupervisedLoss",
    "VNLLoss",
    "valid_mask",
]
