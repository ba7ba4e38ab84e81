"""The training demo learns, explains itself and fails early and clearly.

A few seconds each: tiny scenes, few steps, a fixed seed. The full demo (800 steps) is not
part of the suite; its numbers are in the README and MERGE_NOTES.
"""

from __future__ import annotations

import builtins
import io
import math
import re

import pytest
import torch

from depthloss import __main__ as cli
from depthloss import demo
from depthloss.demo import (
    COLUMNS,
    DemoConfig,
    DemoResult,
    TinyDepthNet,
    constant_baseline,
    format_report,
    format_table,
    synthetic_task,
    train_one,
    untrained,
    verdict,
)

# small enough for the default suite (about a second of training), long enough to learn
SHORT = DemoConfig(steps=80, batch_size=8, height=32, width=64, train_scenes=48, test_scenes=16, lr=4e-3,
                   progress=False, eval_every=40, eval_scenes=8)  # fmt: skip
TINY = DemoConfig(steps=3, batch_size=2, height=32, width=64, train_scenes=8, test_scenes=4, progress=False)
TINY_ARGS = [
    "--steps",
    "3",
    "--batch-size",
    "2",
    "--train-scenes",
    "8",
    "--test-scenes",
    "4",
    "--size",
    "32x64",
    "--quiet",
]


@pytest.fixture(scope="module")
def task():
    torch.set_num_threads(1)
    return synthetic_task(SHORT)


@pytest.fixture(scope="module")
def tiny_task():
    return synthetic_task(TINY)


def _no_module(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    real_import = builtins.__import__

    def fake(name, *args, **kwargs):
        if name.split(".")[0] in names:
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)


# --- learning ------------------------------------------------------------------------------


def test_short_run_learns(task) -> None:
    result = train_one("ssi-silog", SHORT, task)
    before = untrained(SHORT, task, result.align)
    const = constant_baseline(SHORT, task, result.align)
    assert result.align == "metric"
    assert all(math.isfinite(result.metrics[k]) for k in ("abs_rel", "rmse", "d1"))
    # learned: far better than the same network before training and than a constant depth
    assert result.metrics["abs_rel"] < 0.6 * before.metrics["abs_rel"], (result.metrics, before.metrics)
    assert result.metrics["abs_rel"] < 0.6 * const.metrics["abs_rel"], (result.metrics, const.metrics)
    assert result.metrics["d1"] > before.metrics["d1"] + 0.2 and result.metrics["d1"] > const.metrics["d1"]
    assert result.metrics["rmse"] < before.metrics["rmse"]
    losses = torch.tensor(result.history["loss"])
    assert losses.numel() == SHORT.steps and losses[-10:].mean() < losses[:10].mean()
    # the held-out curve starts at the untrained network and ends at the reported numbers' level
    assert result.history["eval_step"] == [0.0, 40.0, 80.0]
    curve = result.history["eval/abs_rel"]
    assert curve[-1] < curve[0]


def test_same_seed_same_result(tiny_task) -> None:
    a, b = train_one("l1", TINY, tiny_task), train_one("l1", TINY, tiny_task)
    assert a.metrics == b.metrics and a.history == b.history


def test_invariant_losses_are_evaluated_aligned(tiny_task) -> None:
    assert train_one("midas", TINY, tiny_task).align == "lsq"
    assert constant_baseline(TINY, tiny_task, "lsq").metrics != constant_baseline(TINY, tiny_task, "metric").metrics


def test_network_outputs_inverse_depth_in_range() -> None:
    net = TinyDepthNet()
    outs = net(torch.rand(2, 3, 48, 80))
    assert [tuple(o.shape[-2:]) for o in outs] == [(48, 80), (24, 40), (12, 20), (6, 10)]
    for o in outs:
        assert (o >= 1 / demo.MAX_DEPTH).all() and (o <= 1 / demo.MIN_DEPTH).all()
    with pytest.raises(ValueError, match="channels"):
        TinyDepthNet((8, 16, 32))


def test_untrained_refiner_reproduces_its_guess() -> None:
    torch.manual_seed(0)
    net = TinyDepthNet(min_depth=1.0, max_depth=10.0, in_channels=4, coords=False, guess_channel=3)
    guess = torch.rand(2, 1, 32, 48) * 0.8 + 0.15  # inverse depth inside [1/10, 1]
    outs = net(torch.cat([torch.rand(2, 3, 32, 48), guess], 1))
    torch.testing.assert_close(outs[0], guess, atol=1e-5, rtol=1e-4)
    pooled = net._to_inverse(torch.nn.functional.avg_pool2d(net._to_logit(guess), 2))  # coarser heads: pooled logit
    torch.testing.assert_close(outs[1], pooled, atol=1e-5, rtol=1e-4)


# --- the report --------------------------------------------------------------------------


def _row(name: str, kind: str, **m: float) -> DemoResult:
    metrics = {k: m.get(k.replace("/", "_"), 0.5) for k, _ in COLUMNS}
    return DemoResult(name, "metric", metrics, kind=kind)


def test_verdict_is_true() -> None:
    good = _row(
        "ssi-silog",
        "trained",
        abs_rel=0.1,
        near_abs_rel=0.1,
        far_abs_rel=0.1,
        rmse=1.0,
        d1=0.9,
        near_d1=0.9,
        far_d1=0.9,
    )
    worse = _row(
        "untrained network",
        "untrained",
        abs_rel=0.9,
        near_abs_rel=0.9,
        far_abs_rel=0.9,
        rmse=9.0,
        d1=0.1,
        near_d1=0.1,
        far_d1=0.1,
    )
    mixed = _row(
        "constant 5.0 m",
        "constant",
        abs_rel=0.9,
        near_abs_rel=0.05,
        far_abs_rel=0.9,
        rmse=9.0,
        d1=0.1,
        near_d1=0.95,
        far_d1=0.1,
    )
    text = verdict(good, [worse, mixed])
    assert "beats the untrained network on all 7 metrics" in text
    assert "beats the constant 5.0 m baseline on 5 of 7 metrics (not on near abs_rel, near δ<1.25)" in text
    assert "abs_rel 0.100" in text


def test_report_has_its_parts(tiny_task) -> None:
    rows = [train_one("ssi-silog", TINY, tiny_task)]
    rows += [untrained(TINY, tiny_task, "metric"), constant_baseline(TINY, tiny_task, "metric")]
    text = format_report(rows, tiny_task, TINY)
    for part in ("What was trained", "  network ", "  data ", "  cues ", "  near ", "  target ", "  loss ",
                 "  training ", "alpha=0.85", "Held-out results", "Columns", "abs_rel ", "near / far",
                 "rmse (m)", "δ<1.25", "eval ", "Verdict: ssi-silog beats the untrained network"):  # fmt: skip
        assert part in text, part
    table = format_table(rows)
    assert table.count("\n") == 4 and "| ssi-silog (trained) | metric |" in table
    assert "| untrained network | metric |" in table and "| constant" in table


def test_cli_compare_prints_report(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["demo", "--compare", "l1, midas", *TINY_ARGS]) == 0
    out = capsys.readouterr().out
    assert "| l1 (trained) | metric |" in out and "| midas (trained) | lsq |" in out
    assert out.count("| untrained network |") == 2 and out.count("| constant") == 2  # per protocol
    assert out.count("Verdict:") == 2


def test_help_shows_every_default(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["demo", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    options = re.findall(r"^\s+(--[a-z-]+)", text, flags=re.M)
    assert {"--loss", "--compare", "--steps", "--seed", "--sparse", "--real", "--plot", "--threads"} <= set(options)
    blocks = re.split(r"\n\s+(?=--[a-z])", text.split("options:")[1])
    for block in blocks:
        if block.strip().startswith("-h"):
            continue
        assert "default" in block, block


@pytest.mark.parametrize(
    "argv, message",
    [
        (["demo", "--steps", "0"], "--steps"),
        (["demo", "--loss", "ssi-silgo"], "did you mean 'ssi-silog'"),
        (["demo", "--size", "64by128"], "--size"),
    ],
)
def test_cli_errors(argv, message: str) -> None:
    with pytest.raises((SystemExit, ValueError), match=message):
        cli.main(argv)


# --- progress ----------------------------------------------------------------------------


class _Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_plain_progress_without_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_module(monkeypatch, "tqdm")
    stream = _Pipe()
    bar = demo._Progress(50, "ssi-silog", stream=stream)
    assert bar.bar is None
    bar.update(0, torch.tensor(1.5))  # the first step prints at once
    first = stream.getvalue()
    assert "ssi-silog: step 1/50" in first and "loss 1.5000" in first and "s left" in first
    for step in range(1, 50):
        bar.update(step, torch.tensor(0.5))
    lines = stream.getvalue().splitlines()
    assert lines[-1].startswith("ssi-silog: step 50/50") and len(lines) <= 5  # not a line per step


def test_progress_on_a_terminal_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_module(monkeypatch, "tqdm")

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    bar = demo._Progress(3, "l1", stream=stream)
    for step in range(3):
        bar.update(step, torch.tensor(0.25))
    text = stream.getvalue()
    assert text.startswith("\r") and text.count("\n") == 1 and text.endswith("\n")


def test_tqdm_progress_when_installed() -> None:
    pytest.importorskip("tqdm")
    stream = _Pipe()
    bar = demo._Progress(2, "l1", stream=stream)
    assert bar.bar is not None
    bar.update(0, torch.tensor(1.0))
    bar.update(1, torch.tensor(0.5))
    assert "l1" in stream.getvalue() and "2/2" in stream.getvalue()


# --- the figure --------------------------------------------------------------------------


def test_plot_without_matplotlib_fails_before_training(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_module(monkeypatch, "matplotlib")

    def no_training(*args, **kwargs):
        raise AssertionError("trained although the figure cannot be drawn")

    monkeypatch.setattr(demo, "train_one", no_training)
    monkeypatch.setattr(demo, "synthetic_task", no_training)
    with pytest.raises(SystemExit, match=r"pip install 'depthloss\[plot\]'"):
        cli.main(["demo", "--plot", "out.png", *TINY_ARGS])


def test_plot_with_matplotlib(tiny_task, tmp_path) -> None:
    pytest.importorskip("matplotlib", reason="the optional 'plot' extra is not installed")
    rows = [train_one("ssi-silog", TINY, tiny_task), train_one("midas", TINY, tiny_task)]
    rows += [constant_baseline(TINY, tiny_task, "metric")]
    path = tmp_path / "demo.png"
    demo.plot_results(rows, tiny_task, str(path))
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # depth maps, not an empty canvas
