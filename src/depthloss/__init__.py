"""depthloss: correct, fast, sync-free PyTorch losses for depth networks."""

from depthloss import functional
from depthloss._version import __version__

__all__ = ["__version__", "functional"]
