"""The examples run: ``examples/ddp_train.py`` without torchrun (a world of one process)."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# Variables torchrun sets: without them the example must form its own one-process world.
TORCHRUN_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                 "GROUP_RANK", "ROLE_RANK", "TORCHELASTIC_RUN_ID")  # fmt: skip
LOSS_LINE = re.compile(r"^step\s+(\d+)/(\d+)\s+loss\s+(\S+)$", re.M)


def test_ddp_train_runs_without_torchrun(tmp_path: Path) -> None:
    steps = 2
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_VARS}
    args = [
        sys.executable, str(EXAMPLES / "ddp_train.py"), "--steps", str(steps), "--batch-size", "2",
        "--scenes-per-rank", "4", "--height", "32", "--width", "48", "--threads", "1",
    ]  # fmt: skip
    proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "world size 1" in proc.stdout, proc.stdout
    lines = LOSS_LINE.findall(proc.stdout)
    assert lines, f"no loss lines printed:\n{proc.stdout}\n{proc.stderr}"
    assert {int(total) for _, total, _ in lines} == {steps}
    assert int(lines[-1][0]) == steps, "the last step is logged"
    assert all(math.isfinite(float(loss)) for _, _, loss in lines), lines
