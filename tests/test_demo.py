"""The training demo learns something real: a short run beats the constant-depth baseline.

Also the command line (``python -m depthloss demo``): options, errors and the printed table.
"""

from __future__ import annotations

import math

import pytest
import torch

from depthloss import __main__ as cli
from depthloss import demo, loss_info
from depthloss.demo import DemoConfig, TinyDepthNet, constant_baseline, format_table, train_one

# small enough for the default suite (a few seconds), long enough to learn
SHORT = DemoConfig(steps=120, batch_size=8, height=48, width=80, train_scenes=96, test_scenes=16, lr=3e-3, log_every=1000)


@pytest.fixture(scope="module")
def data():
    return demo._data(SHORT)


@pytest.mark.parametrize("name", ["scale-adaptive", "ssi-silog"])
def test_short_run_beats_constant_baseline(name: str, data) -> None:
    torch.set_num_threads(2)
    result = train_one(name, SHORT, data)
    baseline = constant_baseline(SHORT, data, result.align)
    assert result.align == baseline.align == "none"  # metric losses are evaluated as metric depth
    assert all(math.isfinite(v) for v in result.metrics.values())
    # learned: clearly better than predicting the training median everywhere
    assert result.metrics["abs_rel"] < 0.9 * baseline.metrics["abs_rel"], (result.metrics, baseline.metrics)
    assert result.metrics["rmse"] < baseline.metrics["rmse"]
    losses = torch.tensor(result.history["loss"])
    assert losses.numel() == SHORT.steps
    if not loss_info(name).uses_progress:  # a scheduled loss changes its scale along the run
        assert losses[-20:].mean() < losses[:20].mean()


def test_invariant_losses_are_evaluated_aligned(data) -> None:
    cfg = DemoConfig(steps=2, batch_size=2, height=48, width=80, train_scenes=96, test_scenes=16, log_every=1000)
    assert train_one("midas", cfg, data).align == "lsq"
    assert constant_baseline(cfg, data, "lsq").metrics != constant_baseline(cfg, data, "none").metrics


def test_same_seed_same_result(data) -> None:
    cfg = DemoConfig(steps=3, batch_size=2, height=48, width=80, train_scenes=96, test_scenes=16, log_every=1000)
    a, b = train_one("l1", cfg, data), train_one("l1", cfg, data)
    assert a.metrics == b.metrics and a.history == b.history


def test_schedules_recorded(data) -> None:
    cfg = DemoConfig(steps=4, batch_size=2, height=48, width=80, train_scenes=96, test_scenes=16, log_every=1000)
    result = train_one("scale-adaptive", cfg, data)
    alpha = result.history["alpha_t"]
    assert alpha[0] == pytest.approx(1.0) and alpha[-1] == pytest.approx(0.0)  # progress reached the loss


def test_network_outputs_inverse_depth_in_range() -> None:
    net = TinyDepthNet()
    outs = net(torch.rand(2, 3, 48, 80))
    assert [tuple(o.shape[-2:]) for o in outs] == [(48, 80), (24, 40), (12, 20), (6, 10)]
    for o in outs:
        assert (o >= 1 / demo.MAX_DEPTH).all() and (o <= 1 / demo.MIN_DEPTH).all()


def test_table_lists_every_result(data) -> None:
    cfg = DemoConfig(steps=2, batch_size=2, height=48, width=80, train_scenes=96, test_scenes=16, log_every=1000)
    results = [train_one("l1", cfg, data), constant_baseline(cfg, data, "none")]
    table = format_table(results)
    assert table.count("\n") == 3 and "| l1 | none |" in table and "| constant" in table


def test_cli_compare_runs_and_prints_table(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "DemoConfig", lambda **kw: DemoConfig(**{**vars(SHORT), "steps": 2, **kw}))
    assert cli.main(["demo", "--compare", "l1, midas", "--steps", "2", "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    assert "| l1 | none |" in out and "| midas | lsq |" in out
    assert out.count("| constant") == 2  # one baseline per evaluation protocol


@pytest.mark.parametrize(
    "argv, message",
    [(["demo", "--steps", "0"], "--steps"), (["demo", "--loss", "ssi-silgo"], "did you mean 'ssi-silog'")],
)
def test_cli_errors(argv, message: str) -> None:
    with pytest.raises((SystemExit, ValueError), match=message):
        cli.main(argv)


def _history_results(data) -> list:
    cfg = DemoConfig(steps=3, batch_size=2, height=48, width=80, train_scenes=96, test_scenes=16, log_every=1000)
    return [train_one("scale-adaptive", cfg, data), train_one("l1", cfg, data)]


def test_plot_without_matplotlib_says_so(data, tmp_path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.split(".")[0] == "matplotlib":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    path = tmp_path / "curves.png"
    assert demo.plot_history(_history_results(data), str(path)) is False
    assert not path.exists() and "pip install 'depthloss[plot]'" in capsys.readouterr().err


def test_plot_with_matplotlib(data, tmp_path) -> None:
    pytest.importorskip("matplotlib", reason="the optional 'plot' extra is not installed")
    path = tmp_path / "curves.png"
    assert demo.plot_history(_history_results(data), str(path)) is True
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
