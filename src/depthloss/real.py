"""Real depth data: the Middlebury 2014 "Motorcycle" scene that scikit-image ships.

``skimage.data.stereo_motorcycle()`` returns the left and right images of the Middlebury
2014 stereo pair (Scharstein et al., GCPR 2014), 500×741 pixels, with dense ground-truth
disparity of the left view (``inf``/``NaN`` where there is none, about 7 % of the pixels).
The files are part of the scikit-image wheel, so nothing is downloaded. With the calibration
in its docstring (focal length 994.978 px, baseline 193.001 mm, ``doffs`` 31.086 px) the
metric depth is ``depth = f · B / (d + doffs)``: 2.1-5.0 m here (a motorcycle in a garage).

:func:`completion_task` turns the scene into the seeds' task, depth completion: the network
sees the image and LiDAR-like sparse samples of the real depth (scan lines from
:func:`depthloss.synthetic.sparsify`, a few percent of the pixels), trains on random crops
of the left part of the image against its dense ground truth, and is evaluated on the
held-out right part (a gap of columns between the two, none of them seen in training)
against the dense ground truth there.

Needs scikit-image (``pip install 'depthloss[real]'``); without it the functions raise an
:class:`ImportError` that says so.
"""

from __future__ import annotations

from typing import Any, Tuple

import numpy as np
import torch
from torch import Tensor

from depthloss import synthetic
from depthloss.functional import downsample_sparse

__all__ = [
    "BASELINE_MM",
    "DOFFS",
    "FOCAL",
    "completion_task",
    "interpolate_scan_lines",
    "load_motorcycle",
]

FOCAL = 994.978  # px, for the 500x741 images scikit-image ships
BASELINE_MM = 193.001
DOFFS = 31.086  # px, x-difference of the principal points
NEAR_THRESHOLD = 2.5  # metres: the motorcycle and the floor in front of it (about a third of the pixels)
MIN_DEPTH = 1.0
MAX_DEPTH = 10.0
DEFAULT_STEPS = 400
INSTALL_HINT = "the real-data mode needs scikit-image: python -m pip install 'depthloss[real]' (or: python -m pip install scikit-image)"


def _stereo_motorcycle() -> Tuple[np.ndarray, np.ndarray]:
    try:
        from skimage.data import stereo_motorcycle
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    left, _, disparity = stereo_motorcycle()  # type: ignore[no-untyped-call]
    return left, disparity


def load_motorcycle(factor: int = 1) -> Tuple[Tensor, Tensor, Tensor]:
    """The left image, its metric depth and where the depth is known.

    Args:
        factor: integer downsampling factor (1 = the shipped 500×741): the image is
            area-averaged, the depth averaged over the known pixels of each block
            (:func:`depthloss.functional.downsample_sparse`).

    Returns:
        ``(image, depth, valid)``: ``(1, 3, H, W)`` float32 RGB in [0, 1], ``(1, 1, H, W)``
        depth in metres (0 where unknown) and the ``(1, 1, H, W)`` bool mask.

    Example:
        >>> image, depth, valid = load_motorcycle()  # doctest: +SKIP
        >>> tuple(depth.shape), round(float(depth[valid].min()), 2), round(float(depth[valid].max()), 2)  # doctest: +SKIP
        ((1, 1, 500, 741), 2.11, 5.02)
    """
    if not isinstance(factor, int) or factor < 1:
        raise ValueError(f"factor must be a positive int, got {factor!r}")
    left, disparity = _stereo_motorcycle()
    image = torch.from_numpy(np.ascontiguousarray(left)).permute(2, 0, 1)[None].float() / 255.0
    disp = torch.from_numpy(np.asarray(disparity, dtype=np.float32))[None, None]
    valid = torch.isfinite(disp) & (disp > 0)
    depth = FOCAL * BASELINE_MM / 1000.0 / (torch.where(valid, disp, torch.zeros_like(disp)) + DOFFS)
    depth = torch.where(valid, depth, torch.zeros_like(depth))
    if factor > 1:
        h, w = (image.shape[-2] // factor) * factor, (image.shape[-1] // factor) * factor
        image = torch.nn.functional.avg_pool2d(image[..., :h, :w], factor)
        depth, valid = downsample_sparse(depth[..., :h, :w], valid[..., :h, :w], factor, "mean")
    return image.contiguous(), depth.contiguous(), valid


def interpolate_scan_lines(sparse: Tensor, valid: Tensor) -> Tensor:
    """Fill every pixel from the samples above and below it in its column (linear in 1/depth).

    The classic baseline for depth completion from scan lines: between two returns of a
    column, interpolate the inverse depth linearly; above the first or below the last,
    repeat it; a column without returns takes the median of all returns.

    Args:
        sparse: ``(B, 1, H, W)`` depth, 0 where there is no sample.
        valid: bool mask of the samples.

    Returns:
        ``(B, 1, H, W)`` dense depth.
    """
    b, _, h, w = sparse.shape
    rows = torch.arange(h).view(1, 1, h, 1).expand(b, 1, h, w)
    inv = torch.where(valid, 1.0 / sparse.clamp(min=1e-6), torch.zeros_like(sparse))
    above = torch.where(valid, rows, torch.full_like(rows, -1)).cummax(dim=2).values
    below = torch.where(valid, rows, torch.full_like(rows, h)).flip(2).cummin(dim=2).values.flip(2)
    has_a, has_b = above >= 0, below < h
    va = torch.gather(inv, 2, above.clamp(0, h - 1))
    vb = torch.gather(inv, 2, below.clamp(0, h - 1))
    t = (rows - above).float() / (below - above).clamp(min=1).float()
    both = torch.lerp(va, vb, t)
    filled = torch.where(has_a & has_b, both, torch.where(has_a, va, vb))
    fallback = inv[valid].median() if valid.any() else torch.tensor(1.0)  # sync-ok: a baseline, not a loss
    filled = torch.where(has_a | has_b, filled, fallback)
    return 1.0 / filled.clamp(min=1e-6)


def completion_task(
    seed: int = 0,
    *,
    factor: int = 2,
    fraction: float = 0.05,
    crop: int = 96,
    train_part: float = 0.6,
    test_start: float = 0.68,
    patterns: int = 16,
) -> Any:
    """Depth completion on the Motorcycle scene as a :class:`depthloss.demo.Task`.

    Args:
        seed: seed of the scan-line patterns and the crops.
        factor: downsampling of the scene (default 2: 250×370).
        fraction: share of the pixels with ground truth that get a LiDAR-like return
            (default 0.05: scan lines every 19 rows).
        crop: side of the square training crops, pixels.
        train_part: the training crops come from the columns left of this fraction of the width.
        test_start: the held-out part is the columns right of this fraction (the columns
            between the two parts are used by neither).
        patterns: number of different scan-line patterns drawn for training (each crop gets
            one at random, as if the scanner had moved); the held-out part gets its own.

    Returns:
        A :class:`depthloss.demo.Task` (input: image, sparse inverse depth, its mask and the
        scan lines interpolated per column, which the network refines).
    """
    from depthloss.demo import Task, _inverse_target

    if not 0.0 < train_part < test_start < 1.0:
        raise ValueError(f"need 0 < train_part < test_start < 1, got {train_part}, {test_start}")
    image, depth, valid = load_motorcycle(factor)
    h, w = depth.shape[-2:]
    split, start = round(train_part * w), round(test_start * w)
    crop = min(crop, h, split)

    def inputs(img: Tensor, sparse: Tensor, mask: Tensor) -> Tensor:
        inv = torch.where(mask, 1.0 / sparse.clamp(min=1e-6), torch.zeros_like(sparse))
        guess = 1.0 / interpolate_scan_lines(sparse, mask)
        return torch.cat([img, inv, mask.to(img.dtype), guess], dim=1)

    # training side: the left part, several scan patterns; the target is the dense depth there
    tr_img, tr_depth, tr_valid = image[..., :split], depth[..., :split], valid[..., :split]
    tr_sparse, tr_mask = synthetic.sparsify(
        tr_depth.expand(patterns, -1, -1, -1), tr_valid.expand(patterns, -1, -1, -1), fraction, seed, offset=1
    )
    tr_inputs = inputs(tr_img.expand(patterns, -1, -1, -1), tr_sparse, tr_mask)
    tr_target = _inverse_target(tr_depth, tr_valid, MIN_DEPTH)

    def sample(g: torch.Generator, batch: int) -> Tuple[Tensor, Tensor]:
        which = torch.randint(0, patterns, (batch,), generator=g).tolist()  # sync-ok: CPU indices
        ys = torch.randint(0, h - crop + 1, (batch,), generator=g).tolist()  # sync-ok: CPU indices
        xs = torch.randint(0, split - crop + 1, (batch,), generator=g).tolist()  # sync-ok: CPU indices
        x = torch.cat([tr_inputs[k : k + 1, :, y : y + crop, c : c + crop] for k, y, c in zip(which, ys, xs)])
        t = torch.cat([tr_target[:, :, y : y + crop, c : c + crop] for y, c in zip(ys, xs)])
        return x.contiguous(memory_format=torch.channels_last), t

    # held-out side: the right part with its own scan pattern
    te_img, te_depth, te_valid = image[..., start:], depth[..., start:], valid[..., start:]
    te_sparse, te_mask = synthetic.sparsify(te_depth, te_valid, fraction, seed, offset=0)
    te_inputs = inputs(te_img, te_sparse, te_mask)
    constant = float(tr_depth[tr_valid].median())  # sync-ok: setup
    share = float(te_mask.float().mean())  # sync-ok: setup
    near = float((te_depth[te_valid] < NEAR_THRESHOLD).float().mean())  # sync-ok: setup
    lines = [
        ("data", f"Middlebury 2014 'Motorcycle' (scikit-image), {h}x{w} (1/{factor} of 500x741); training: "
                 f"random {crop}x{crop} crops of columns 0-{split - 1}; held out: columns {start}-{w - 1} "
                 f"({te_depth.shape[-1]} wide, never seen in training)"),
        ("input", f"image + LiDAR-like scan lines of the real depth, {100 * share:.1f} % of the held-out pixels "
                  f"({patterns} scan patterns in training, another one held out)"),
        ("target", "inverse depth 1/m of the dense ground truth (depth = f·B/(d + doffs) from the "
                   "Middlebury disparity; holes have none)"),
        ("near", f"closer than {NEAR_THRESHOLD:g} m (the motorcycle and the floor in front): "
                 f"{100 * near:.0f} % of the held-out pixels"),
    ]  # fmt: skip
    return Task(
        kind="real", sample=sample, test_inputs=te_inputs.contiguous(memory_format=torch.channels_last),
        test_depth=te_depth, test_valid=te_valid, test_images=te_img, constant=constant,
        in_channels=6, coords=False, guess_channel=5, min_depth=MIN_DEPTH, max_depth=MAX_DEPTH, near_threshold=NEAR_THRESHOLD,
        lines=lines, loss_kwargs={"near-field-ssi-silog": {"near_threshold": NEAR_THRESHOLD}},
        baselines=[("scan lines interpolated per column", interpolate_scan_lines(te_sparse, te_mask))],
        extra_plot=("sparse input (scan lines)", te_sparse),
    )  # fmt: skip
