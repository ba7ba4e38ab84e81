"""masked_median vs the per-image loop ``x[b][mask[b]].median()`` it replaces.

    python benchmarks/median.py [--device cpu|cuda] [--threads 2]

Times forward and forward+backward at 4x1x256x512 with 30% and 100% valid pixels, for a
uniformly random mask (worst case for branchy kernels) and a LiDAR-like scan-line mask,
and checks both give the same medians before timing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from depthloss.functional import masked_median
from timing import Timing, environment, measure


def loop_median(x: Tensor, mask: Tensor) -> Tensor:
    """The baseline: one boolean-indexed median per image (a host sync per image on CUDA)."""
    return torch.stack([x[b][mask[b]].median() for b in range(x.shape[0])])


def make_mask(shape: tuple, fraction: float, kind: str, generator: torch.Generator, device: torch.device) -> Tensor:
    if fraction >= 1.0:
        return torch.ones(shape, dtype=torch.bool, device=device)
    if kind == "random":
        return (torch.rand(shape, generator=generator) < fraction).to(device)
    # scan lines: every k-th row, with per-point dropout, ~fraction of pixels
    rows = torch.zeros(shape, dtype=torch.bool)
    step = max(1, round(1.0 / min(1.0, fraction / 0.9)))
    rows[:, :, ::step, :] = True
    return (rows & (torch.rand(shape, generator=generator) < 0.9)).to(device)


def fwd_bwd(fn: Callable[[Tensor, Tensor], Tensor], x: Tensor, mask: Tensor) -> Callable[[], None]:
    def run() -> None:
        xg = x.detach().requires_grad_()
        fn(xg, mask).sum().backward()

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-run-time", type=float, default=0.5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    shape = (4, 1, 256, 512)
    x = (torch.rand(shape, generator=g) * 80 + 0.5).to(device)
    print(f"# masked_median vs per-image loop, {shape}, {environment(device)}")
    print("| valid | mask | pass | loop (ms) | masked_median (ms) | speed-up |")
    print("|---|---|---|---|---|---|")
    for fraction in (0.3, 1.0):
        for kind in ("random", "scanlines") if fraction < 1 else ("full",):
            mask = make_mask(shape, fraction, kind, g, device)
            ours = masked_median(x, mask)
            ref = loop_median(x, mask)
            if not torch.equal(ours, ref):
                raise SystemExit(f"medians differ: {ours} vs {ref}")
            for label, make in (
                ("forward", lambda f, mask=mask: lambda: f(x, mask)),
                ("fwd+bwd", lambda f, mask=mask: fwd_bwd(f, x, mask)),
            ):
                t_loop: Timing = measure(make(loop_median), args.min_run_time)
                t_ours: Timing = measure(make(masked_median), args.min_run_time)
                print(
                    f"| {fraction:.0%} | {kind} | {label} | {t_loop.median_ms:.2f} | {t_ours.median_ms:.2f} "
                    f"| {t_loop.median_ms / t_ours.median_ms:.2f}x |"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
