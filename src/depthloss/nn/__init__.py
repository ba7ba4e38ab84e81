"""Loss modules: thin wrappers holding hyper-parameters, schedules and metrics.

Importing this package registers every loss with :mod:`depthloss.registry`.
"""

from depthloss.nn.abs_rel import AbsRelLoss
from depthloss.nn.base import DepthLoss, valid_mask
from depthloss.nn.berhu import BerHuLoss
from depthloss.nn.confidence import ConfidenceLoss
from depthloss.nn.depth_pro import DepthProLoss
from depthloss.nn.enhanced_ssi import EnhancedSSILoss
from depthloss.nn.gaussian_nll import GaussianNLLLoss
from depthloss.nn.grad_l1 import GradL1Loss
from depthloss.nn.hdn import HDNLoss
from depthloss.nn.hdn_random import HDNRandomLoss
from depthloss.nn.l1 import L1Loss
from depthloss.nn.laplace_nll import LaplaceNLLLoss
from depthloss.nn.local_ssi import LocalSSILoss
from depthloss.nn.mage import MAGELoss
from depthloss.nn.male import MALELoss
from depthloss.nn.midas import MiDaSLoss
from depthloss.nn.mse import MSELoss
from depthloss.nn.msge import MSGELoss
from depthloss.nn.near_field_ssi_silog import NearFieldSSISilog
from depthloss.nn.normal import NormalLoss
from depthloss.nn.progressive_ssi import ProgressiveSSILoss
from depthloss.nn.ranking import RankingLoss
from depthloss.nn.scale_adaptive import ScaleAdaptiveLoss
from depthloss.nn.silog import SILogLoss
from depthloss.nn.ssi import SSILoss
from depthloss.nn.ssi_silog import SSISilogLoss
from depthloss.nn.ssi_trim import SSITrimLoss
from depthloss.nn.supervised import SupervisedLoss
from depthloss.nn.temporal_gradient_matching import TemporalGradientMatchingLoss
from depthloss.nn.video_depth import VideoDepthLoss
from depthloss.nn.vnl import VNLLoss

__all__ = [
    "AbsRelLoss",
    "BerHuLoss",
    "ConfidenceLoss",
    "DepthLoss",
    "DepthProLoss",
    "EnhancedSSILoss",
    "GaussianNLLLoss",
    "GradL1Loss",
    "HDNLoss",
    "HDNRandomLoss",
    "L1Loss",
    "LaplaceNLLLoss",
    "LocalSSILoss",
    "MAGELoss",
    "MALELoss",
    "MSELoss",
    "MSGELoss",
    "MiDaSLoss",
    "NearFieldSSISilog",
    "NormalLoss",
    "ProgressiveSSILoss",
    "RankingLoss",
    "SILogLoss",
    "SSILoss",
    "SSISilogLoss",
    "SSITrimLoss",
    "ScaleAdaptiveLoss",
    "SupervisedLoss",
    "TemporalGradientMatchingLoss",
    "VNLLoss",
    "VideoDepthLoss",
    "valid_mask",
]
