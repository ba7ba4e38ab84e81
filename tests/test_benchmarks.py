"""Smoke test of the benchmark suite: it runs end to end on a tiny shape (no timing assertions)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

import depthloss

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def run_module():
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_run"] = module  # dataclasses resolve their module through sys.modules
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("bench_run", None)
        sys.path.remove(str(BENCH))


def test_run_suite_on_a_tiny_shape(run_module, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "bench.json"
    assert run_module.main(["--shapes", "tiny", "--min-run-time", "0.01", "--rounds", "1", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert {"torch", "device", "device_name", "threads", "seed", "shapes"} <= set(data["environment"])
    assert data["environment"]["shapes"] == [
        {"name": "tiny", "batch": 2, "height": 32, "width": 64, "valid": 0.3, "valid_fractions": [0.3]}
    ]
    timed = {row["loss"] for row in data["losses"]}
    assert timed == set(depthloss.list_losses())  # every registered loss, both valid fractions
    assert {row["valid"] for row in data["losses"]} == {0.3}
    assert {row["name"] for row in data["baselines"]} == set(run_module.BASELINES)
    for row in data["losses"]:
        assert row["forward"]["median_ms"] > 0 and row["forward_backward"]["median_ms"] > 0
    for name in depthloss.list_losses():
        assert f"| {name} |" in table


def test_unknown_shape_is_rejected(run_module) -> None:
    with pytest.raises(SystemExit, match="unknown shape"):
        run_module.main(["--shapes", "huge"])
