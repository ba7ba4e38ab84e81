"""DistributedDataParallel: per-image losses and ``scope="global"`` give the single-device training signal.

Two ``gloo`` ranks on loopback are spawned once for the module (``torch.multiprocessing``,
bounded in time); each runs every case of :mod:`ddp_cases` through DDP and saves its loss
and gradients. The parent computes the same cases on the whole batch in one process and
compares. Without a process group, ``scope="global"`` is ``scope="batch"`` (tested here too).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import torch
from torch import Tensor

import ddp_cases
import depthloss
from ddp_cases import Case, all_cases, evaluate, global_cases, make_model, per_image_cases

TIMEOUT_S = 110.0
# float32 sums over a few hundred pixels in a different order (per rank, then all-reduced)
RTOL, ATOL = 2e-4, 1e-6

Results = Dict[str, Tuple[Tensor, List[Tensor]]]


def _run_ranks(out_dir: Path) -> List[Results]:
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("this torch build has no torch.distributed gloo backend")
    init_file = out_dir / "init"
    ctx = torch.multiprocessing.start_processes(
        ddp_cases.worker,
        args=(ddp_cases.WORLD_SIZE, str(init_file), str(out_dir)),
        nprocs=ddp_cases.WORLD_SIZE,
        join=False,
        start_method="spawn",
    )
    deadline = time.monotonic() + TIMEOUT_S
    while not ctx.join(timeout=1.0):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"the {ddp_cases.WORLD_SIZE} DDP ranks did not finish within {TIMEOUT_S:.0f} s")
    return [torch.load(out_dir / f"rank{r}.pt") for r in range(ddp_cases.WORLD_SIZE)]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> List[Results]:
    return _run_ranks(tmp_path_factory.mktemp("ddp"))


def _reference(case: Case) -> Tuple[Tensor, List[Tensor]]:
    return evaluate(case, make_model(), rank=None)


def _assert_grads_close(got: List[Tensor], want: List[Tensor]) -> float:
    worst = 0.0
    for g, w in zip(got, want):
        assert torch.isfinite(g).all()
        torch.testing.assert_close(g, w, rtol=RTOL, atol=ATOL)
        worst = max(worst, float((g - w).abs().max()))
    return worst


@pytest.mark.parametrize("case", per_image_cases(), ids=lambda c: c.name)
def test_ddp_gradient_equals_single_process_for_per_image_losses(case: Case, ranks: List[Results]) -> None:
    _, want = _reference(case)
    assert any(float(w.abs().max()) > 0 for w in want)  # a real training signal to compare
    for results in ranks:  # DDP leaves the same averaged gradient on every rank
        _assert_grads_close(results[case.name][1], want)


@pytest.mark.parametrize("case", global_cases(), ids=lambda c: c.name)
def test_global_scope_equals_single_process_batch_scope(case: Case, ranks: List[Results]) -> None:
    loss, want = _reference(case)
    assert float(loss) > 0 and any(float(w.abs().max()) > 0 for w in want)
    for results in ranks:
        got_loss, got = results[case.name]
        assert torch.isfinite(got_loss)
        torch.testing.assert_close(got_loss, loss, rtol=RTOL, atol=ATOL)  # every rank: the whole batch's loss
        _assert_grads_close(got, want)


@pytest.mark.parametrize("case", global_cases(), ids=lambda c: c.name)
def test_global_scope_without_process_group_is_batch_scope(case: Case) -> None:
    assert not torch.distributed.is_initialized()
    as_global = evaluate(case, make_model(), rank=None, scope="global")
    as_batch = _reference(case)
    torch.testing.assert_close(as_global[0], as_batch[0], rtol=0, atol=0)
    for g, w in zip(as_global[1], as_batch[1]):
        torch.testing.assert_close(g, w, rtol=0, atol=0)


def test_global_scope_differs_from_per_rank_batch_scope(ranks: List[Results]) -> None:
    """The all-reduce matters: a rank's batch-scope loss on its own shard is not the global loss."""
    case = next(c for c in global_cases() if c.name == "global/ssi")
    loss, _ = _reference(case)
    local, _ = evaluate(Case(case.name, case.call, "batch", case.shards), make_model(), rank=0)
    assert abs(float(local) - float(loss)) > 1e-4 * abs(float(loss))
    torch.testing.assert_close(ranks[0][case.name][0], loss, rtol=RTOL, atol=ATOL)


def test_every_case_ran(ranks: List[Results]) -> None:
    names = {c.name for c in all_cases()}
    for results in ranks:
        assert set(results) == names


@pytest.mark.parametrize("name", [n for n in depthloss.list_losses() if "global" in depthloss.loss_info(n).scopes])
def test_global_scope_compiles_without_graph_break(name: str) -> None:
    torch._dynamo.reset()
    loss_fn = depthloss.get_loss(name, scope="global", input_space="inverse")
    compiled = torch.compile(loss_fn, fullgraph=True, backend="eager")
    case = next(c for c in global_cases() if c.name == f"global/{name}")
    _, target, _ = ddp_cases.make_batch(case)
    pred = (target + 0.05).requires_grad_(True)
    out = compiled(pred, target, progress=torch.tensor(ddp_cases.PROGRESS))
    out.backward()
    torch.testing.assert_close(
        out, depthloss.get_loss(name, scope="batch", input_space="inverse")(pred, target, progress=ddp_cases.PROGRESS)
    )
    assert torch.isfinite(pred.grad).all()
