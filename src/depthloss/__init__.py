"""depthloss: correct, fast, sync-free PyTorch losses for depth networks.

>>> import depthloss
>>> loss = depthloss.get_loss("sparse-scale-adaptive", input_space="depth")
>>> type(loss).__name__
'ScaleAdaptiveLoss'
"""

from depthloss import functional
from depthloss._accel import accelerations, accelerations_enabled
from depthloss._version import __version__
from depthloss.config import from_config
from depthloss.nn import (
    AbsRelLoss,
    BerHuLoss,
    ConfidenceLoss,
    DepthLoss,
    DepthProLoss,
    EnhancedSSILoss,
    GaussianNLLLoss,
    GradL1Loss,
    HDNLoss,
    HDNRandomLoss,
    L1Loss,
    LaplaceNLLLoss,
    LocalSSILoss,
    MAGELoss,
    MALELoss,
    MiDaSLoss,
    MSELoss,
    MSGELoss,
    NearFieldSSISilog,
    NormalLoss,
    ProgressiveSSILoss,
    RankingLoss,
    ScaleAdaptiveLoss,
    SILogLoss,
    SSILoss,
    SSISilogLoss,
    SSITrimLoss,
    SupervisedLoss,
    TemporalGradientMatchingLoss,
    VideoDepthLoss,
    VNLLoss,
)
from depthloss.registry import LossInfo, get_loss, list_losses, loss_info, register_loss

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
    "LossInfo",
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
    "__version__",
    "accelerations",
    "accelerations_enabled",
    "from_config",
    "functional",
    "get_loss",
    "list_losses",
    "loss_info",
    "register_loss",
]
