"""Every registered acceleration (``depthloss._accel.registered()``) against its reference.

For each acceleration a parity case computes the reference building block with
``depthloss.accelerations(False)`` and the accelerated one with ``accelerations(True)``:

- **value and gradient**, float64 and float32. The selection is exact: values and gradients
  are compared **bit for bit** in both dtypes (stated tolerance 0); the losses built on it
  (``ssi_mae``, ``ssi-trim``) agree to rtol 1e-12 (float64) and 1e-6 (float32);
- masks with **ties**, **empty rows** (``k = 0``), **all-valid rows**, single valid entries, every
  rank ``k``;
- **CPU always, CUDA when present** (skipped otherwise): on a device the acceleration is not
  enabled for, the seam must route to the reference (``lookup`` returns ``None``);
- inside ``torch.compile(fullgraph=True)`` (a compile-aware acceleration stays in the graph).

And the switch: ``DEPTHLOSS_ACCEL=0`` (a fresh interpreter) and ``with accelerations(False)``
really route to the reference: the acceleration's ``fn`` is replaced by one that raises.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from typing import Callable, Dict, Iterator, Tuple

import pytest
import torch
from torch import Tensor

import depthloss
import depthloss.functional as DF
from depthloss import _accel
from depthloss.functional.statistics import kth_smallest

DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param("cuda", id="cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")),
]
DTYPES = [pytest.param(torch.float64, id="f64"), pytest.param(torch.float32, id="f32")]


# ---------------------------------------------------------------------------------------------
# inputs: (G, N) rows with a validity mask
# ---------------------------------------------------------------------------------------------
def rows_case(kind: str, dtype: torch.dtype) -> Tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(7)
    shape = (6, 23)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    valid = torch.rand(shape, generator=g) < 0.6
    if kind == "ties":
        x = torch.randint(0, 4, shape, generator=g).to(torch.float64)
    elif kind == "empty_rows":
        valid[1] = False
        valid[4] = False
    elif kind == "all_valid":
        valid[:] = True
    elif kind == "single":
        valid[:] = False
        valid[torch.arange(6), torch.randint(0, 23, (6,), generator=g)] = True
    elif kind == "mixed":
        valid[0] = True
        valid[1] = False
        valid[2] = False
        valid[2, 5] = True
    elif kind == "constant_row":
        x[3] = 0.5  # every valid value of row 3 ties
    x = torch.where(valid, x, torch.tensor(float("nan"), dtype=torch.float64))  # never read
    return x.to(dtype), valid


CASES = ("random", "ties", "constant_row", "empty_rows", "all_valid", "single", "mixed")


def kth_parity(kind: str, dtype: torch.dtype, device: str) -> Iterator[Tuple[str, Callable[[], Tuple[Tensor, Tensor]]]]:
    """``kth_smallest`` at every rank ``k`` (and k = 0): ``(label, fn -> (value, gradient))``."""
    x, valid = rows_case(kind, dtype)
    x, valid = x.to(device), valid.to(device)
    count = valid.sum(dim=1)
    probe = torch.arange(1.0, x.shape[0] + 1.0, dtype=dtype, device=device)
    for rank in range(int(count.max()) + 1):
        k = torch.minimum(count, torch.tensor(rank, device=device))

        def run(k: Tensor = k) -> Tuple[Tensor, Tensor]:
            leaf = x.detach().clone().requires_grad_(True)
            value = kth_smallest(leaf, valid, k)
            (grad,) = torch.autograd.grad((value * probe).sum(), leaf)
            return value.detach(), grad

        yield f"k={rank}", run


#: a parity case per acceleration name: a new acceleration must add its own here
PARITY: Dict[str, Callable[[str, torch.dtype, str], Iterator[Tuple[str, Callable[[], Tuple[Tensor, Tensor]]]]]] = {
    "kth_smallest_index": kth_parity,
}


def test_every_acceleration_has_a_parity_case() -> None:
    assert set(_accel.registered()) <= set(PARITY), f"add parity cases for {set(_accel.registered()) - set(PARITY)}"
    for name, acc in _accel.registered().items():
        assert acc.name == name and acc.devices and acc.reference.startswith("depthloss.")


def _parity_params():
    for name in sorted(_accel.registered()):
        for case in CASES:
            yield pytest.param(name, case, id=f"{name}-{case}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,case", list(_parity_params()))
def test_parity(name: str, case: str, device: str, dtype: torch.dtype) -> None:
    acc = _accel.registered()[name]
    probe = torch.empty(1, device=device)
    if device not in acc.devices:  # not enabled there: the seam routes to the reference
        with depthloss.accelerations(True):
            assert _accel.lookup(name, probe) is None
    for label, run in PARITY[name](case, dtype, device):
        with depthloss.accelerations(False):
            ref_value, ref_grad = run()
        with depthloss.accelerations(True):
            assert (_accel.lookup(name, probe) is not None) == (device in acc.devices)
            value, grad = run()
        assert torch.isfinite(value).all() and torch.isfinite(grad).all(), label
        torch.testing.assert_close(value, ref_value, rtol=0, atol=0, msg=lambda m: f"{label} value: {m}")
        torch.testing.assert_close(grad, ref_grad, rtol=0, atol=0, msg=lambda m: f"{label} gradient: {m}")


LOSS_TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-6}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kernel", ["ssi_mae", "ssi_trim", "ssi_mae_batch_trim"])
def test_losses_built_on_the_selection_agree(kernel: str, device: str, dtype: torch.dtype) -> None:
    """Distinct values (no ties): value and gradient of the trimmed losses equal in both modes."""
    g = torch.Generator().manual_seed(3)
    pred = (0.2 + torch.rand(3, 1, 9, 11, generator=g, dtype=torch.float64)).to(dtype).to(device)
    target = (0.2 + torch.rand(3, 1, 9, 11, generator=g, dtype=torch.float64)).to(dtype).to(device)
    mask = (torch.rand(3, 1, 9, 11, generator=g) < 0.5).to(device)
    mask[1] = False
    fn = {
        "ssi_mae": lambda p: DF.ssi_mae(p, target, mask, trim=0.3, reduction="none"),
        "ssi_trim": lambda p: DF.ssi_trim(p, target, mask, scales=2, reduction="none"),
        "ssi_mae_batch_trim": lambda p: DF.ssi_mae(p, target, mask, trim_scope="batch", reduction="pixel-mean"),
    }[kernel]
    results = []
    for mode in (False, True):
        with depthloss.accelerations(mode):
            leaf = pred.clone().requires_grad_(True)
            value = fn(leaf)
            (grad,) = torch.autograd.grad(value.sum(), leaf)
            results.append((value.detach(), grad))
    tol = LOSS_TOLERANCE[dtype]
    torch.testing.assert_close(results[1][0], results[0][0], rtol=tol, atol=tol)
    torch.testing.assert_close(results[1][1], results[0][1], rtol=tol, atol=tol)


@pytest.mark.parametrize("name", sorted(_accel.registered()))
def test_compile_aware_acceleration_in_a_fullgraph(name: str) -> None:
    acc = _accel.registered()[name]
    if not acc.compile_aware:
        pytest.skip("kept out of compiled graphs")
    torch._dynamo.reset()
    x, valid = rows_case("random", torch.float64)
    k = (valid.sum(dim=1) + 1) // 2
    calls = []
    patched = dataclasses.replace(acc, fn=lambda *a: calls.append(1) or acc.fn(*a))
    try:
        with depthloss.accelerations(True), pytest.MonkeyPatch.context() as mp:
            mp.setitem(_accel._REGISTRY, name, patched)
            compiled = torch.compile(lambda x: kth_smallest(x, valid, k), fullgraph=True, backend="eager")
            got = compiled(x)
        assert calls, "the compile-aware acceleration is traced into the graph"
        with depthloss.accelerations(False):
            torch.testing.assert_close(got, kth_smallest(x, valid, k), rtol=0, atol=0)
    finally:
        torch._dynamo.reset()


# ---------------------------------------------------------------------------------------------
# the switch really routes to the reference
# ---------------------------------------------------------------------------------------------
def _boom(*args: object) -> Tensor:
    raise RuntimeError("the acceleration ran")


@pytest.mark.parametrize("name", sorted(_accel.registered()))
def test_context_manager_routes_to_the_reference(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_accel._REGISTRY, name, dataclasses.replace(_accel.registered()[name], fn=_boom))
    pred, target = torch.rand(2, 1, 8, 8) + 0.5, torch.rand(2, 1, 8, 8) + 0.5
    module = depthloss.get_loss("ssi-trim", input_space="inverse")
    with depthloss.accelerations(True), pytest.raises(RuntimeError, match="the acceleration ran"):
        module(pred, target)  # the loss does reach the acceleration (the test below is not vacuous)
    with depthloss.accelerations(False):
        assert not depthloss.accelerations_enabled()
        assert torch.isfinite(module(pred, target))
        assert torch.isfinite(DF.ssi_mae(pred, target))
    with depthloss.accelerations(True):
        with depthloss.accelerations(False):
            pass
        assert depthloss.accelerations_enabled(), "restored on exit"


def test_context_manager_restores_after_an_exception_and_checks_its_argument() -> None:
    before = depthloss.accelerations_enabled()
    with pytest.raises(KeyError), depthloss.accelerations(not before):
        raise KeyError("x")
    assert depthloss.accelerations_enabled() == before
    with pytest.raises(TypeError, match="enabled"), depthloss.accelerations("no"):  # type: ignore[arg-type]
        pass


SCRIPT = textwrap.dedent(
    """
    import dataclasses, sys, torch, depthloss
    from depthloss import _accel
    def boom(*a):
        raise RuntimeError("the acceleration ran")
    for name, acc in list(_accel.registered().items()):
        _accel._REGISTRY[name] = dataclasses.replace(acc, fn=boom)
    p, t = torch.rand(2, 1, 8, 8) + 0.5, torch.rand(2, 1, 8, 8) + 0.5
    try:
        depthloss.get_loss("ssi-trim", input_space="inverse")(p, t)
        print("reference", depthloss.accelerations_enabled())
    except RuntimeError as err:
        print("accelerated", depthloss.accelerations_enabled(), err)
    """
)


@pytest.mark.parametrize("value,expected", [("0", "reference False"), (None, "accelerated True")])
def test_environment_switch(value: str, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DEPTHLOSS_ACCEL"}
    if value is not None:
        env["DEPTHLOSS_ACCEL"] = value
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith(expected), proc.stdout


def test_lookup_respects_devices_and_compile_awareness() -> None:
    """The seam itself, with a throw-away acceleration: device filter, switch, compile awareness."""
    acc = _accel.Acceleration(
        name="test_only_block", fn=lambda x: x, devices=("cpu",), compile_aware=False, reference="depthloss.test"
    )
    _accel.register(acc)
    try:
        with pytest.raises(ValueError, match="already registered"):
            _accel.register(acc)
        x = torch.ones(2)
        with depthloss.accelerations(True):
            assert _accel.lookup("test_only_block", x) is acc.fn
            assert _accel.lookup("test_only_block", x.to("meta")) is None  # not enabled on that device
            assert _accel.lookup("no_such_block", x) is None
            torch._dynamo.reset()
            compiled = torch.compile(
                lambda t: t + (1.0 if _accel.lookup("test_only_block", t) is None else 2.0),
                fullgraph=True,
                backend="eager",
            )
            assert float(compiled(torch.zeros(())).item()) == 1.0  # not compile-aware: the reference runs in graphs
        with depthloss.accelerations(False):
            assert _accel.lookup("test_only_block", x) is None
    finally:
        _accel._REGISTRY.pop("test_only_block", None)
        torch._dynamo.reset()
