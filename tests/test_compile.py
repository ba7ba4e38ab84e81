"""``torch.compile``: every registered loss and ``SupervisedLoss`` (issue 12 items 1, 2 and 7).

Each loss (and the driver) is compiled with ``fullgraph=True`` (a graph break is an error) on
the ``"eager"`` backend, which runs the captured graph as is, and called with 10 distinct float
``progress`` values at two batch sizes. Graphs are counted with
``torch._dynamo.utils.counters["stats"]["unique_graphs"]`` after ``torch._dynamo.reset()``:

- ``dynamic=None``: at most 3 graphs (static; then progress dynamic; then the batch dynamic),
  i.e. no recompile per new float value (issue 12 item 1: ``progress-ssi`` recompiled for every
  value and hit the recompile limit, ``enhanced-ssi`` failed a guard on the third value);
- ``dynamic=True``: exactly 1 graph (issue 12 item 2: ``abs_rel``, ``silog``, ``ssi-trim``,
  ``scale-adaptive`` and ``SupervisedLoss`` failed with ``InternalTorchDynamoError``);
- ``module.progress = value`` between calls adds no graph;
- compiled values and gradients equal eager ones;
- bad inputs raise the same ``ValueError`` / ``TypeError`` as eager, not a
  ``torch._dynamo`` exception (issue 12 item 7), and add no graph.

The building blocks and functional losses compile without graph breaks too (one traced function
for all of them). ``test_inductor`` (marked slow) compiles a few losses with the default backend.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple

import pytest
import torch
from torch import Tensor
from torch._dynamo.utils import counters

import depthloss
import depthloss.functional as DF
from depthloss import SupervisedLoss
from helpers import NAMES, build, loss_inputs, small_kwargs

PROGRESS_VALUES = [0.05 + 0.09 * i for i in range(10)]
BATCHES = (2, 3)


def graphs() -> int:
    return int(counters["stats"]["unique_graphs"])


def graph_breaks() -> int:
    return int(sum(counters["graph_break"].values()))


@pytest.fixture
def dynamo() -> Any:
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()
    counters.clear()


def bad_calls(inputs: Any) -> List[Tuple[Tuple[Any, ...], Dict[str, Any], type, str]]:
    """Calls that eager modules reject: ``(args, kwargs, exception, message regex)``."""
    p, t = inputs.pred, inputs.target
    extra = {k: v for k, v in inputs.kwargs.items() if k != "progress"}
    return [
        ((p, t[:, :, :3]), extra, ValueError, r"target must have the same shape as pred"),
        ((p, t, (t > 0).float()), extra, TypeError, r"mask must be a bool tensor"),
        ((p.long(), t), extra, TypeError, r"pred must be a floating-point tensor"),
        ((p, t), dict(extra, progress="x"), TypeError, r"progress must be"),
        ((p, t), dict(extra, progress=float("nan")), ValueError, r"progress must be finite"),
        ((p, t), dict(extra, progress=torch.tensor([0.5])), ValueError, r"progress must be"),
        (
            (p.expand(p.shape[0], 3, *p.shape[-2:]), t.expand(t.shape[0], 3, *t.shape[-2:]))
            if p.dim() != 4 or p.shape[1] == 1
            else (p[:, 0], t[:, 0]),  # (B, T, H, W) clips: a single frame is the wrong layout
            extra,
            ValueError,
            r"pred must have shape",
        ),
        ((p, t), dict(extra, not_an_input=p), TypeError, r"not_an_input"),
    ]


def run_calls(fn: Callable[..., Tensor], name: str, shape_hw: Tuple[int, int] = (10, 12)) -> List[Tensor]:
    out = []
    for b in BATCHES:
        inputs = loss_inputs(name, shape=(b, 1) + shape_hw, density=0.5, seed=b, progress=None)
        for value in PROGRESS_VALUES:
            out.append(inputs.call(fn, progress=value))
    return out


# ---------------------------------------------------------------------------------------------
# every registered loss
# ---------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("dynamo")
@pytest.mark.parametrize("name", NAMES)
def test_compile_dynamic_none(name: str) -> None:
    eager = build(name, **small_kwargs(name))
    module = build(name, **small_kwargs(name))
    compiled = torch.compile(module, fullgraph=True, backend="eager")
    got = run_calls(compiled, name)
    assert graph_breaks() == 0
    assert 1 <= graphs() <= 3, f"{graphs()} graphs: a new float progress or batch size recompiled"
    want = run_calls(eager, name)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)
    if depthloss.loss_info(name).uses_progress and name != "near-field-ssi-silog":  # its threshold is fixed by default
        assert len({round(float(v), 6) for v in got[:10]}) > 1, "progress reaches the compiled graph"

    # progress through the attribute (progress=None: one more graph at most, then none per value);
    # the metrics match eager's
    inputs = loss_inputs(name, shape=(3, 1, 10, 12), density=0.5, seed=3, progress=None)
    before = -1
    for value in (0.7, 0.2, 0.45):
        module.progress, eager.progress = value, value
        pred_c, pred_e = inputs.leaf(), inputs.leaf()
        loss_c, loss_e = inputs.call(compiled, pred_c), inputs.call(eager, pred_e)
        loss_c.backward()
        loss_e.backward()
        torch.testing.assert_close(loss_c, loss_e, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(pred_c.grad, pred_e.grad, rtol=1e-5, atol=1e-7)
        assert set(module.metrics) == set(eager.metrics)
        for key in eager.metrics:
            torch.testing.assert_close(module.metrics[key], eager.metrics[key], rtol=1e-5, atol=1e-6)
        assert before < 0 or graphs() == before, "changing module.progress must not recompile"
        before = graphs()

    # errors: the same ValueError / TypeError as eager, before the compiled region
    for args, kwargs, exc, pattern in bad_calls(inputs):
        with pytest.raises(exc, match=pattern):
            eager(*args, **kwargs)
        with pytest.raises(exc, match=pattern) as err:
            compiled(*args, **kwargs)
        assert not type(err.value).__module__.startswith("torch._dynamo"), type(err.value)
    assert graphs() == before


@pytest.mark.usefixtures("dynamo")
@pytest.mark.parametrize("name", NAMES)
def test_compile_dynamic_true(name: str) -> None:
    compiled = torch.compile(build(name, **small_kwargs(name)), fullgraph=True, backend="eager", dynamic=True)
    got = run_calls(compiled, name)
    assert graph_breaks() == 0
    assert graphs() == 1, f"dynamic=True compiled {graphs()} graphs"
    want = run_calls(build(name, **small_kwargs(name)), name)
    torch.testing.assert_close(got[-1], want[-1], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got[3], want[3], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# SupervisedLoss
# ---------------------------------------------------------------------------------------------
SUPERVISED = ("sparse-near-field-ssi-silog", "sparse-midas")


def supervised_calls(fn: Callable[..., Dict[str, Any]]) -> List[Tensor]:
    out = []
    for b in BATCHES:
        g = torch.Generator().manual_seed(b)
        target = torch.rand(b, 1, 12, 16, generator=g) * (torch.rand(b, 1, 12, 16, generator=g) < 0.4) + 0.0
        preds = [torch.rand(b, 1, 12, 16, generator=g) + 0.2, torch.rand(b, 1, 6, 8, generator=g) + 0.2]
        for value in PROGRESS_VALUES:
            out.append(fn(preds, target, progress=value)["loss"])
    return out


@pytest.mark.usefixtures("dynamo")
@pytest.mark.parametrize("dynamic", [None, True], ids=["dynamic_none", "dynamic_true"])
@pytest.mark.parametrize("method", SUPERVISED)
def test_compile_supervised_loss(method: str, dynamic: Any) -> None:
    kwargs = {"scales": 2} if "midas" in method else {}
    module = SupervisedLoss(method, num_scales=2, input_space="inverse", **kwargs)
    compiled = torch.compile(module, fullgraph=True, backend="eager", dynamic=dynamic)
    got = supervised_calls(compiled)
    assert graph_breaks() == 0
    assert graphs() == 1 if dynamic else 1 <= graphs() <= 3, graphs()
    want = supervised_calls(SupervisedLoss(method, num_scales=2, input_space="inverse", **kwargs))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)
    # errors as eager (issue 12 items 6 and 7): the batch mismatch names both shapes
    before = graphs()
    target = torch.rand(2, 1, 16, 16)
    cases = [
        (
            ([torch.rand(3, 1, 16, 16)], target),
            {},
            ValueError,
            r"preds\[0\] must have the target's batch size.*\(2, 1, 16, 16\).*\(3, 1, 16, 16\)",
        ),
        (([torch.rand(2, 1, 16, 16)], target), {"masks": target.float()}, TypeError, r"masks must be a bool tensor"),
        (([torch.rand(2, 1, 16, 16)], target), {"progress": "x"}, TypeError, r"progress must be"),
        (([], target), {}, ValueError, r"preds must hold at least one prediction"),
    ]
    for args, kw, exc, pattern in cases:
        with pytest.raises(exc, match=pattern):
            module(*args, **kw)
        with pytest.raises(exc, match=pattern):
            compiled(*args, **kw)
    assert graphs() == before


# ---------------------------------------------------------------------------------------------
# building blocks and functional losses
# ---------------------------------------------------------------------------------------------
def every_kernel(p: Tensor, t: Tensor, m: Tensor, w: Tensor, th: Tensor, pr: Tensor) -> List[Tensor]:
    """One call of every public kernel of ``depthloss.functional`` (all in one traced frame)."""
    out: List[Any] = [
        DF.abs_rel(p, t, m, w), DF.berhu(p, t, m, w, reduction="none"), DF.l1(p, t, m, w), DF.mse(p, t, m, w, scope="batch"),
        DF.silog(p, t, m, weights=w), DF.ssi(p, t, m, weights=w), DF.ssi_lsq(p, t, m, w), DF.ssi_mae(p, t, m),
        DF.ssi_mae(p, t, m, trim_scope="batch", reduction="pixel-mean"), DF.ssi_silog(p, t, m), DF.ssi_trim(p, t, m, scales=2),
        DF.midas(p, t, m, scales=2, reduction="pixel-mean"), DF.enhanced_ssi(p, t, m, pr), DF.progressive_ssi(p, t, m, pr),
        DF.scale_adaptive(p, t, m, pr, num_scales=2), DF.near_field_ssi_silog(p, t, m, pr, threshold_schedule="linear"),
        DF.masked_mean(p, m, w), DF.masked_var(p, m, w), DF.masked_median(p, m), DF.masked_median(p, m, scope="batch"),
        *DF.mad_normalize(p, m), *DF.lsq_scale_shift(p, t, m, w), *DF.sobel(t), DF.sobel_mask(m).float(),
        DF.gradient_matching(p - t, m, scales=2), DF.gradient_matching(p - t, m, scales=3, operator="diff", reduction="none"),
        DF.downsample(t, 2), DF.downsample(t, 3, "bilinear"), *(DF.downsample_sparse(p, m, 2, mode).depth for mode in ("mean", "min", "nearest")),
        DF.depth_to_inv(p, min_depth=0.7, max_depth=1.8), DF.inv_to_depth(p, max_depth=1.5),
        *(DF.near_field_weights(t, th, 5.0, 0.3, mode) for mode in ("smooth", "linear", "step")),
        DF.scale_weights(pr, 4), *(DF.schedule(pr, kind, 1.0, 0.2) for kind in ("linear", "cosine", "step", "constant")),
        (100.0 * DF.clamp_grad(torch.where(m, p, 0.0), 0.5)).sum(),
        DF.mage(p, t, m, 2), DF.male(p, t, m, 2, reduction="pixel-mean"), DF.msge(p, t, m, 2, scope="batch"),
        DF.depth_pro(p, t, m, num_scales=2), DF.grad_l1(p, t, m), DF.grad_l1(p, t, m, "atan", reduction="pixel-mean"),
        DF.hdn(p, t, m), DF.hdn(p, t, m, grouping="depth", bins="range", reduction="pixel-mean"),
        DF.hdn_random(p, t, m, samples=(w.flatten(1)[:, :18].reshape(2, 3, 6) - 0.1).clamp(0.0, 0.999)),
        DF.ranking(p, t, m, num_pairs=30, seed=0), DF.ranking_pairs(t, m, num_pairs=30, seed=1).float(),
        DF.gaussian_nll(p, t, w - 0.5, m), DF.laplace_nll(p, t, w - 0.5, m, residual="linear"),
        DF.confidence_loss(p, t, w, m, detach_pred=False), DF.confidence_loss(p, t, w, m, form="unidepth"),
        DF.local_ssi(p, t, m, num_windows=4), DF.local_ssi(p, t, m, w.expand(2, 3, 6, 7), num_windows=3, align="std"),
        DF.temporal_gradient_matching(*(x.reshape(1, 2, 6, 7) for x in (p, t, m))),  # the batch as one clip
        DF.video_depth(*(x.reshape(1, 2, 6, 7) for x in (p, t, m)), scales=2),
        DF.backproject(p, (4.0, 4.0, 3.0, 2.5)), DF.depth_to_normals(p, (4.0, 4.0, 3.0, 2.5), m).normals,
        DF.normal(p, t, m, (4.0, 4.0, 3.0, 2.5), stencil="forward"), DF.vnl(p, t, m, (4.0, 4.0, 3.0, 2.5), seed=0),
        DF.vnl_samples(m, 5, seed=0).float(),
    ]  # fmt: skip
    return out


def kernel_inputs(seed: int, threshold: float, progress: float) -> Tuple[Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    shape = (2, 1, 6, 7)
    m = torch.rand(shape, generator=g) > 0.25
    m[:, :, 0, 0] = True
    p = (0.5 + 1.5 * torch.rand(shape, generator=g)).requires_grad_(True)
    t = torch.where(m, 0.5 + 1.5 * torch.rand(shape, generator=g), 0.0)
    w = 0.1 + torch.rand(shape, generator=g)
    return p, t, m, w, torch.tensor(threshold), torch.tensor(progress)


def test_every_public_kernel_is_in_the_traced_function() -> None:
    import inspect

    source = inspect.getsource(every_kernel)
    public = sorted(n for n in DF.__all__ if inspect.isfunction(getattr(DF, n)))
    missing = [n for n in public if f"DF.{n}(" not in source]
    assert not missing, f"add {missing} to every_kernel"


@pytest.mark.usefixtures("dynamo")
def test_every_kernel_compiles_without_graph_breaks() -> None:
    compiled = torch.compile(every_kernel, fullgraph=True, backend="eager")
    for seed, threshold, progress in ((0, 1.2, 0.3), (1, 0.8, 0.9)):  # new 0-dim tensor values: no recompile
        inputs = kernel_inputs(seed, threshold, progress)
        got = compiled(*inputs)
        want = every_kernel(*kernel_inputs(seed, threshold, progress))
        assert len(got) == len(want)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
        total = sum(
            (x.float() * (1.0 + torch.arange(x.numel()).reshape(x.shape) / 7.0)).sum() for x in got if x.requires_grad
        )
        (grad,) = torch.autograd.grad(total, inputs[0])
        assert torch.isfinite(grad).all()
    assert graph_breaks() == 0 and graphs() == 1


# ---------------------------------------------------------------------------------------------
# inductor
# ---------------------------------------------------------------------------------------------
INDUCTOR = ("l1", "ssi-trim")  # plain ops; and the selection custom op (compile-aware acceleration) in the graph


@pytest.mark.slow
@pytest.mark.usefixtures("dynamo")
@pytest.mark.parametrize("name", INDUCTOR)
def test_inductor(name: str) -> None:
    module = build(name, **small_kwargs(name))
    compiled = torch.compile(module, fullgraph=True)
    inputs = loss_inputs(name, shape=(2, 1, 16, 16), density=0.5, progress=None)
    for value in (0.2, 0.6, 0.9):
        pred_c, pred_e = inputs.leaf(), inputs.leaf()
        loss_c, loss_e = inputs.call(compiled, pred_c, progress=value), inputs.call(module, pred_e, progress=value)
        loss_c.backward()
        loss_e.backward()
        torch.testing.assert_close(loss_c, loss_e, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(pred_c.grad, pred_e.grad, rtol=1e-4, atol=1e-6)
    assert graph_breaks() == 0 and graphs() <= 3
