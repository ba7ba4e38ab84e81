"""``video-depth``: Video Depth Anything's training loss, per-frame SSI + 10 TGM (:func:`depthloss.functional.video_depth`).

The shared checks of the video losses (oracle values, gradients, compile, invariances) live in
``test_temporal_gradient_matching.py`` (:class:`VideoLossChecks`); this file runs them for
``video-depth`` and compares the authors' form with a transcription of their ``VideoDepthLoss``.
"""

from __future__ import annotations

import torch
from test_temporal_gradient_matching import VD, VideoLossChecks, video_case

import depthloss.functional as DF
import reference as R
from helpers import SPACES, build, gen, to_input_space


class TestVideoDepth(VideoLossChecks):
    NAME = VD

    def test_module_equals_functional(self) -> None:
        pred_d, target_d = video_case((2, 3, 6, 6), 5)
        target_d = torch.where(torch.rand(target_d.shape, generator=gen(6)) < 0.7, target_d, 0.0)
        for space in SPACES:
            pred, target = to_input_space(pred_d, space).float(), to_input_space(target_d, space).float()
            # the module's conversion written out: inverse depth is 1 / depth where positive
            inv_p, inv_t = (
                (pred, target)
                if space == "inverse"
                else (to_input_space(pred, "inverse"), to_input_space(target, "inverse"))
            )
            valid = target > 0
            module = build(VD, space, reduction="none", tgm_weight=3.0, scales=2)
            got = module(pred, target)
            want = DF.video_depth(inv_p, inv_t, valid, 3.0, scales=2, reduction="none")
            torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
            assert got.abs().min() > 0
            m = module.metrics
            assert set(m) == {"spatial", "tgm", "loss"} and all(v.grad_fn is None for v in m.values())
            torch.testing.assert_close(m["spatial"] + 3.0 * m["tgm"], m["loss"])

    def test_authors_form(self) -> None:
        """``reduction="pixel-mean", median_over="all-pixels"`` is the authors' ``VideoDepthLoss``."""
        for seed, density in ((0, 1.0), (1, 0.7)):
            pred, target = video_case((2, 4, 8, 8), seed)
            mask = torch.rand(target.shape, generator=gen(seed + 1)) < density
            target = torch.where(mask, target, 0.0)  # their inputs hold 0 at invalid pixels
            got = DF.video_depth(pred, target, mask, median_over="all-pixels", reduction="pixel-mean")
            want = R.video_depth_authors(pred, target, mask)
            torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-9)
        default = DF.video_depth(pred, target, mask)  # depthloss's default is not the authors' form
        assert abs(float(default) - float(want)) > 1e-6
