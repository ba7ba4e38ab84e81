"""``examples/lightning_train.py`` trains with Lightning: progress from the trainer, the metric logged.

Skipped unless Lightning and torchmetrics are installed (``pip install "depthloss[lightning]"``).
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Dict, Iterator

import pytest
import torch

pytest.importorskip("torchmetrics", reason="the example needs torchmetrics (the lightning extra)")
try:
    import lightning.pytorch as pl
except ImportError:
    pl = pytest.importorskip("pytorch_lightning", reason="the lightning extra is not installed")

from depthloss.metrics import DepthMetrics

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "lightning_train.py"
TINY = ["--scenes", "6", "--val-scenes", "4", "--batch-size", "2", "--height", "32", "--width", "48", "--threads", "1"]


@pytest.fixture(scope="module")
def example() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("lightning_train_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_progress_runs_from_zero_to_one_over_the_run(example: ModuleType) -> None:
    steps = [example.training_progress(s, 7) for s in range(7)]
    assert steps[0] == 0.0 and steps[-1] == 1.0
    assert all(a < b for a, b in zip(steps, steps[1:]))
    assert example.training_progress(3, 1) == 1.0 and example.training_progress(0, 1) == 0.0
    assert example.training_progress(5, math.inf) == 0.0


def test_script_trains_across_epochs_and_logs_the_metric(tmp_path: Path) -> None:
    steps = 5  # 3 batches per epoch: the run crosses an epoch boundary
    args = [sys.executable, str(EXAMPLE), "--loss", "sparse-scale-adaptive", "--max-steps", str(steps), *TINY,
            "--root", str(tmp_path)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    out = proc.stdout
    assert f"{steps} steps over epochs 0-1" in out, out
    progress = [float(p) for p in re.search(r"^progress (.*)$", out, re.M).group(1).split()]  # type: ignore[union-attr]
    assert len(progress) == steps and progress[0] == 0.0 and progress[-1] == 1.0
    assert all(a < b for a, b in zip(progress, progress[1:])), progress
    logged: Dict[str, float] = {k: float(v) for k, v in re.findall(r"^((?:train|val)/\S+) (\S+)$", out, re.M)}
    assert set(logged) == {"train/loss", "val/abs_rel", "val/rmse", "val/d1", "val/near/abs_rel"}
    assert all(math.isfinite(v) for v in logged.values()), logged
    assert logged["val/abs_rel"] > 0 and 0 <= logged["val/d1"] <= 1


def test_logged_metric_is_depth_metrics_of_the_trained_model(example: ModuleType, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = example.DepthModule("ssi-trim", lr=1e-3)  # scale-and-shift invariant: evaluated lsq-aligned
    assert model.align == "lsq"
    train_loader, val_loader = example.make_loaders(model.sparse, 4, 4, 32, 48, 2, 0)
    trainer = pl.Trainer(
        max_steps=3, max_epochs=-1, val_check_interval=3, check_val_every_n_epoch=None, num_sanity_val_steps=0,
        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=str(tmp_path),
    )  # fmt: skip
    trainer.fit(model, train_loader, val_loader)
    assert [round(p, 6) for _, p in model.progress_history] == [0.0, 0.5, 1.0]
    assert float(model.criterion.progress) == 0.0  # progress was passed per call, the module default untouched

    reference = DepthMetrics(min_depth=example.MIN_DEPTH, max_depth=example.MAX_DEPTH, align="lsq",
                             near_threshold=example.NEAR_THRESHOLD)  # fmt: skip
    model.eval()
    with torch.no_grad():
        for images, depth, valid in val_loader:
            reference.update(1.0 / model(images)[0], depth, valid)
    want = reference.compute()
    for key in example.LOGGED:
        assert float(trainer.callback_metrics[f"val/{key}"]) == pytest.approx(want[key], rel=1e-5, abs=1e-7), key
