"""Real depth data (``depthloss.real``): the Middlebury "Motorcycle" scene and depth completion.

Needs the optional ``real`` extra (scikit-image, which ships the scene); the tests that
need it skip cleanly without it, and the missing-extra error is tested either way.
"""

from __future__ import annotations

import builtins
import math

import pytest
import torch

from depthloss import __main__ as cli
from depthloss import demo, real


def _skimage() -> None:
    pytest.importorskip("skimage", reason="the optional 'real' extra (scikit-image) is not installed")


def test_missing_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_skimage(name, *args, **kwargs):
        if name.split(".")[0] == "skimage":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_skimage)
    with pytest.raises(ImportError, match=r"pip install 'depthloss\[real\]'"):
        real.load_motorcycle()


def test_motorcycle_depth_from_the_calibration() -> None:
    _skimage()
    from skimage.data import stereo_motorcycle

    image, depth, valid = real.load_motorcycle()
    assert image.shape == (1, 3, 500, 741) and depth.shape == valid.shape == (1, 1, 500, 741)
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    assert 0.9 < float(valid.float().mean()) < 0.95  # about 7 % of the pixels have no ground truth
    assert (depth[~valid] == 0).all()
    _, _, disp = stereo_motorcycle()
    d = torch.from_numpy(disp)[None, None][valid].double()
    torch.testing.assert_close(depth[valid].double(), 994.978 * 0.193001 / (d + 31.086), rtol=1e-6, atol=0)
    assert 2.0 < float(depth[valid].min()) < float(depth[valid].max()) < 5.1  # metres
    small_image, small, small_valid = real.load_motorcycle(4)
    assert small.shape == (1, 1, 125, 185) and small_image.shape == (1, 3, 125, 185)
    assert float(small[small_valid].min()) > 2.0 and float(small[small_valid].max()) < 5.1


def test_scan_line_interpolation_is_exact_between_lines() -> None:
    h, w = 21, 5
    inv = torch.linspace(0.2, 0.6, h).view(1, 1, h, 1).expand(1, 1, h, w)  # linear in 1/depth
    valid = torch.zeros(1, 1, h, w, dtype=torch.bool)
    valid[..., ::5, :] = True  # scan lines on rows 0, 5, 10, 15, 20
    sparse = torch.where(valid, 1.0 / inv, torch.zeros_like(inv))
    out = real.interpolate_scan_lines(sparse, valid)
    torch.testing.assert_close(1.0 / out, inv, rtol=1e-5, atol=1e-6)
    # above the first / below the last return: repeated; a column without returns: the median
    valid[..., 0, :] = False
    valid[..., :, 4] = False
    out = real.interpolate_scan_lines(sparse, valid)
    assert torch.allclose(out[0, 0, :5, 0], sparse[0, 0, 5, 0].expand(5))
    median = (1.0 / sparse[valid]).median()
    assert torch.allclose(1.0 / out[0, 0, :, 4], median.expand(h))


def test_completion_on_a_small_crop_learns() -> None:
    _skimage()
    torch.set_num_threads(1)
    task = real.completion_task(seed=0, factor=4, crop=48, patterns=4)
    assert task.in_channels == 6 and task.test_inputs.shape[-2:] == task.test_depth.shape[-2:]
    # the held-out columns are not among the training ones (a gap between the parts)
    assert task.test_depth.shape[-1] == 185 - round(0.68 * 185)
    share = float((task.test_inputs[:, 4] > 0).float().mean())
    assert 0.02 < share < 0.08  # a few percent of the pixels carry a LiDAR-like return
    cfg = demo.DemoConfig(steps=40, batch_size=4, lr=1e-3, progress=False, eval_every=20)
    result = demo.train_one("ssi-silog", cfg, task)
    before = demo.untrained(cfg, task, "metric")
    interp = demo.evaluate(task.baselines[0][1], task.test_depth, task.test_valid, "metric", task)
    # the untrained refiner is the interpolation it refines
    assert before.metrics["abs_rel"] == pytest.approx(interp["abs_rel"], abs=2e-3)
    assert all(math.isfinite(result.metrics[k]) for k in ("abs_rel", "rmse", "d1", "near/abs_rel", "far/abs_rel"))
    losses = torch.tensor(result.history["loss"])
    assert losses[-10:].mean() < losses[:10].mean()  # it trains
    const = demo.constant_baseline(cfg, task, "metric")
    assert result.metrics["abs_rel"] < 0.5 * const.metrics["abs_rel"]
    text = demo.format_report([result, before, const], task, cfg)
    assert "Motorcycle" in text and "near / far" in text and "2.5 m" in text


def test_cli_real_mode(capsys: pytest.CaptureFixture) -> None:
    _skimage()
    assert cli.main(["demo", "--real", "--steps", "2", "--batch-size", "2", "--compare", "l1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "| l1 (trained) | metric |" in out and "| scan lines interpolated per column | metric |" in out
    assert "Verdict: l1" in out
