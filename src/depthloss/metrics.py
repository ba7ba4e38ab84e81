r"""Standard depth evaluation metrics (Eigen et al. 2014; Monodepth2 / BTS protocol).

:func:`depth_metrics` evaluates one batch; :class:`DepthMetrics` accumulates a whole
dataset; with torchmetrics installed (``pip install "depthloss[metrics]"``),
``DepthMetricsTM`` is the same accumulator as a ``torchmetrics.Metric`` (its states are the
sufficient statistics, summed across processes by torchmetrics' own synchronization). Both follow the protocol of the reference evaluation scripts: every metric is
computed **per image over that image's valid pixels**, then averaged over the images that
have at least one valid pixel.

Everything is dense and sync-free (no boolean indexing, no ``.item()``, no loop over
images, no branching on tensor values), so evaluation runs on the device without host
synchronization and compiles with ``torch.compile(fullgraph=True)``. The only host
synchronization is :meth:`DepthMetrics.compute`, which returns Python floats on request.

References:
    - D. Eigen, C. Puhrsch, R. Fergus. *Depth Map Prediction from a Single Image using a
      Multi-Scale Deep Network.* NeurIPS 2014 (abs_rel, sq_rel, rmse, rmse_log, δ
      thresholds, scale-invariant log error).
    - C. Godard et al. *Digging Into Self-Supervised Monocular Depth Estimation*
      (Monodepth2), ICCV 2019; ``compute_errors`` and ``evaluate`` in
      ``nianticlabs/monodepth2/evaluate_depth.py`` (validity ``MIN_DEPTH < gt < MAX_DEPTH``,
      median scaling with ``np.median``, prediction clamped to ``[MIN_DEPTH, MAX_DEPTH]``).
    - J. H. Lee et al. *From Big to Small: Multi-Scale Local Planar Guidance for Monocular
      Depth Estimation* (BTS), 2019; ``compute_errors`` in ``cleinc/bts/pytorch/bts_eval.py``
      (adds ``silog = sqrt(mean(e**2) - mean(e)**2) * 100`` and ``log10``; replaces
      ``inf`` predictions by ``max_depth_eval`` and ``NaN`` by ``min_depth_eval``).
    - R. Ranftl et al. *Towards Robust Monocular Depth Estimation: Mixing Datasets for
      Zero-shot Cross-dataset Transfer* (MiDaS), TPAMI 2020: relative predictions are
      aligned by least-squares scale and shift in disparity space before evaluation.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple, Type

import torch
from torch import Tensor

from depthloss._checks import _compiling, check_choice, check_float, check_mask, check_pair
from depthloss.functional._plumbing import autocast_off, compute_dtype, rows, safe_div
from depthloss.functional.statistics import kth_smallest, lower_median, lsq_rows

if TYPE_CHECKING:  # torchmetrics is an optional extra, imported only when DepthMetricsTM is used
    import torchmetrics

# ``DepthMetricsTM`` (a ``torchmetrics.Metric``) is reached through the module ``__getattr__``
# below and is not listed here, so ``from depthloss.metrics import *`` works without torchmetrics.
__all__ = ["METRIC_NAMES", "DepthMetrics", "depth_metrics"]

#: Names of the per-image metrics, in the order they appear in the result.
METRIC_NAMES = ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "silog", "d1", "d2", "d3")

ALIGNS = ("median", "lsq")
ALIGN_SPACES = ("disparity", "depth")

# Exact in binary floating point, like Monodepth2's ``1.25 ** k``.
_DELTA_THRESHOLDS = (1.25, 1.25**2, 1.25**3)


def _check_config(min_depth: Any, max_depth: Any, align: Any, align_space: Any, near_threshold: Any) -> None:
    """Validate the evaluation hyper-parameters (eagerly; skipped while compiling)."""
    if _compiling():
        return
    check_float("min_depth", min_depth, low=0.0, low_inclusive=False)
    check_float("max_depth", max_depth, low=0.0, low_inclusive=False)
    if not float(min_depth) < float(max_depth):
        raise ValueError(
            f"min_depth must be smaller than max_depth, got min_depth={min_depth!r}, max_depth={max_depth!r}"
        )
    if align is not None and (not isinstance(align, str) or align not in ALIGNS):
        raise ValueError(f"align must be None, 'median' or 'lsq', got {align!r}")
    check_choice("align_space", align_space, ALIGN_SPACES)
    if near_threshold is not None:
        check_float("near_threshold", near_threshold, low=0.0, low_inclusive=False)


def _numpy_median(x: Tensor, valid: Tensor, count: Tensor) -> Tensor:
    """Per-row median with NumPy's convention: the mean of the two middle values for even counts.

    Two exact order statistics (ranks ``(n + 1) // 2`` and ``n // 2 + 1``), which coincide for
    odd ``n``. Rows without valid entries give 0.
    """
    lo = lower_median(x, valid, count)
    hi = kth_smallest(x, valid, torch.where(count > 0, count // 2 + 1, torch.zeros_like(count)))
    return 0.5 * (lo + hi)


def _align(
    p: Tensor,
    t: Tensor,
    valid: Tensor,
    w: Tensor,
    count: Tensor,
    min_depth: float,
    max_depth: float,
    align: Optional[str],
    align_space: str,
) -> Tensor:
    """Align ``(G, N)`` predictions to the targets per row (before the final clamp)."""
    if align == "median":
        med_t = _numpy_median(t, valid, count)
        med_p = _numpy_median(p, valid, count)
        ok = med_p > 0
        ratio = torch.where(ok, med_t / torch.where(ok, med_p, torch.ones_like(med_p)), torch.ones_like(med_p))
        return p * ratio.unsqueeze(-1)
    if align == "lsq":
        if align_space == "disparity":
            # A zero prediction (infinite disparity) is read as min_depth.
            x = 1.0 / torch.where(p == 0, torch.full_like(p, min_depth), p)
            y = 1.0 / t
            fit = lsq_rows(x, y, w)
            disp = fit.scale.unsqueeze(-1) * x + fit.shift.unsqueeze(-1)
            return 1.0 / disp.clamp(1.0 / max_depth, 1.0 / min_depth)
        fit = lsq_rows(p, t, w)
        return fit.scale.unsqueeze(-1) * p + fit.shift.unsqueeze(-1)
    return p


def _errors(p: Tensor, t: Tensor, valid: Tensor, dtype: torch.dtype, prefix: str, out: Dict[str, Tensor]) -> Tensor:
    """Per-row metrics over ``valid`` into ``out`` (batch sums) and return the per-row pixel counts.

    ``p`` and ``t`` must be positive and finite everywhere (invalid entries sanitized).
    """
    w = (valid).to(dtype)
    n = w.sum(dim=-1)

    def mean(x: Tensor) -> Tensor:
        return safe_div((w * x).sum(dim=-1), n)

    diff = p - t
    sq = diff.square()
    e = torch.log(p) - torch.log(t)
    e_mean = mean(e)
    delta = torch.maximum(p / t, t / p)
    per_image = {
        "abs_rel": mean(diff.abs() / t),
        "sq_rel": mean(sq / t),
        "rmse": torch.sqrt(mean(sq)),
        "rmse_log": torch.sqrt(mean(e.square())),
        "log10": mean((torch.log10(p) - torch.log10(t)).abs()),
        # Centred form of sqrt(E[e^2] - E[e]^2): equal in exact arithmetic, never negative.
        "silog": 100.0 * torch.sqrt(mean((e - e_mean.unsqueeze(-1)).square())),
    }
    for i, thr in enumerate(_DELTA_THRESHOLDS, start=1):
        per_image[f"d{i}"] = mean((delta < thr).to(dtype))
    for name in METRIC_NAMES:
        out[prefix + name] = per_image[name].sum()
    out[prefix + "count"] = (n > 0).to(dtype).sum()
    return n


@autocast_off
def _batch_sums(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor],
    min_depth: float,
    max_depth: float,
    align: Optional[str],
    align_space: str,
    near_threshold: Optional[float],
) -> Dict[str, Tensor]:
    """Sums over the batch's images of every per-image metric, plus the image counts."""
    check_pair(pred, target)
    check_mask(mask, pred)
    _check_config(min_depth, max_depth, align, align_space, near_threshold)
    dtype = compute_dtype(pred, target)
    p = rows(pred.detach(), "image").to(dtype)
    t = rows(target.detach(), "image").to(dtype)
    valid = torch.isfinite(t) & (t > min_depth) & (t < max_depth)
    if mask is not None:
        valid = valid & rows(mask, "image")
    one = torch.ones_like(t)
    t = torch.where(valid, t, one)
    # BTS's handling of non-finite predictions: NaN -> min_depth, +inf -> max_depth, -inf -> min_depth.
    p = torch.nan_to_num(p, nan=min_depth, posinf=max_depth, neginf=min_depth)
    p = torch.where(valid, p, one)
    w = (valid).to(dtype)
    count = valid.sum(dim=-1)
    p = _align(p, t, valid, w, count, min_depth, max_depth, align, align_space)
    p = p.clamp(min_depth, max_depth)

    out: Dict[str, Tensor] = {}
    n = _errors(p, t, valid, dtype, "", out)
    if near_threshold is not None:
        near = valid & (t < near_threshold)
        n_near = _errors(p, t, near, dtype, "near/", out)
        _errors(p, t, valid & ~near, dtype, "far/", out)
        out["near/fraction"] = safe_div(n_near, n).sum()
    return out


def _finalize(sums: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Per-image averages from batch (or dataset) sums; 0 where no image counts."""
    out: Dict[str, Tensor] = {}
    for prefix in ("", "near/", "far/"):
        key = prefix + "count"
        if key not in sums:
            continue
        n = sums[key]
        for name in METRIC_NAMES:
            out[prefix + name] = safe_div(sums[prefix + name], n)
        out[key] = n
        if prefix == "near/":
            out["near/fraction"] = safe_div(sums["near/fraction"], sums["count"])
    return out


def _zero_sums(split: bool) -> Dict[str, Tensor]:
    """The sums of an empty dataset (every metric and count 0)."""
    prefixes = ("", "near/", "far/") if split else ("",)
    sums = {p + k: torch.zeros(()) for p in prefixes for k in (*METRIC_NAMES, "count")}
    if split:
        sums["near/fraction"] = torch.zeros(())
    return sums


def depth_metrics(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    min_depth: float = 1e-3,
    max_depth: float = 80.0,
    align: Optional[str] = None,
    *,
    align_space: str = "disparity",
    near_threshold: Optional[float] = None,
) -> Dict[str, Tensor]:
    r"""Standard depth metrics of a batch, per image over valid pixels, averaged over images.

    For image :math:`b` with valid pixels :math:`V_b` (:math:`n_b = |V_b|`), prediction
    :math:`\hat d` (after alignment and clamping) and ground truth :math:`d`:

    .. math::

        \text{abs\_rel} &= \tfrac{1}{n_b}\textstyle\sum_i |\hat d_i - d_i| / d_i, \qquad
        \text{sq\_rel} = \tfrac{1}{n_b}\textstyle\sum_i (\hat d_i - d_i)^2 / d_i \\
        \text{rmse} &= \sqrt{\tfrac{1}{n_b}\textstyle\sum_i (\hat d_i - d_i)^2}, \qquad
        \text{rmse\_log} = \sqrt{\tfrac{1}{n_b}\textstyle\sum_i e_i^2}, \qquad
        e_i = \log \hat d_i - \log d_i \\
        \text{log10} &= \tfrac{1}{n_b}\textstyle\sum_i |\log_{10} \hat d_i - \log_{10} d_i|, \qquad
        \text{silog} = 100\sqrt{E[e^2] - E[e]^2} \\
        \text{d}k &= \tfrac{1}{n_b}\,\#\{i : \max(\hat d_i / d_i,\ d_i / \hat d_i) < 1.25^k\},
        \quad k = 1, 2, 3

    exactly BTS's ``compute_errors`` (Monodepth2's is the same without ``log10`` and
    ``silog``; Monodepth2 calls ``d1, d2, d3`` ``a1, a2, a3``). ``silog`` is evaluated in
    the centred form :math:`100\sqrt{E[(e - E[e])^2]}`, equal in exact arithmetic and never
    the square root of a negative rounding error. Each returned metric is the mean of the
    per-image values over the images with :math:`n_b > 0`.

    **Valid pixels** (bounds exclusive, as in Monodepth2 and BTS):
    ``mask & isfinite(target) & (target > min_depth) & (target < max_depth)``.

    **Prediction.** Non-finite predictions are replaced first, as BTS does (``NaN`` and
    ``-inf`` by ``min_depth``, ``+inf`` by ``max_depth``); then the prediction is aligned
    (``align``) using the valid pixels of the image, and finally clamped to
    ``[min_depth, max_depth]`` (Monodepth2: ``pred[pred < MIN] = MIN; pred[pred > MAX] = MAX``).

    **Alignment** (per image, over its valid pixels):

    - ``None``: metric prediction, used as is.
    - ``"median"``: median scaling (Monodepth2's monocular evaluation),
      ``pred *= median(target) / median(pred)``. The medians follow **NumPy's convention**
      (``np.median``, what Monodepth2 uses): for an even number of valid pixels, the mean
      of the two middle values. They are exact (two order statistics from a batched radix
      select), not approximations. If ``median(pred) <= 0`` the prediction is left unscaled.
    - ``"lsq"``: least-squares scale and shift, for relative (affine-invariant) predictions.

      * ``align_space="disparity"`` (**default**, the MiDaS / DPT evaluation): fit
        :math:`\min_{s,t}\sum_i (s/\hat d_i + t - 1/d_i)^2`, then
        ``pred = 1 / clamp(s/pred + t, 1/max_depth, 1/min_depth)``. This is the natural
        space for models that predict affine-invariant inverse depth, and the clamp keeps a
        negative or zero fitted disparity finite (it becomes ``max_depth``). A prediction of
        exactly 0 is read as ``min_depth`` here.
      * ``align_space="depth"``: fit :math:`\min_{s,t}\sum_i (s\hat d_i + t - d_i)^2`,
        then ``pred = s*pred + t`` (clamped as above).

      A prediction that is constant over the valid pixels has no unique fit; the aligned
      prediction is then the mean target (in the fitting space), see
      :func:`depthloss.functional.lsq_scale_shift`. ``align_space`` only affects ``"lsq"``.

    **Near / far split.** With ``near_threshold`` (metres), the same metrics are also
    returned for the near pixels (valid and ``target < near_threshold``, keys ``"near/..."``)
    and the far pixels (valid and ``target >= near_threshold``, keys ``"far/..."``). The
    alignment is always fitted on *all* valid pixels of the image. An image without near
    (far) pixels is left out of the near (far) average; ``"near/count"`` and
    ``"far/count"`` count the images that were averaged. ``"near/fraction"`` is the fraction
    of an image's valid pixels that are near, averaged over the images counted in
    ``"count"``.

    **Empty images.** An image without valid pixels is excluded from every average. If no
    image in the batch has a valid pixel, every metric is 0 (not NaN) and ``count`` is 0;
    use ``count`` to weight batches (or :class:`DepthMetrics`) when accumulating.

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)`` predicted depth (metres, or relative depth
            with ``align``).
        target: ground-truth depth, same shape; 0, negative or non-finite values are invalid.
        mask: optional bool tensor, same shape; ``False`` excludes a pixel.
        min_depth: lower evaluation bound, exclusive for the target (default ``1e-3``, as
            Monodepth2 and BTS); must be ``> 0`` and ``< max_depth``.
        max_depth: upper evaluation bound, exclusive for the target (default ``80``, KITTI).
        align: ``None`` (default), ``"median"`` or ``"lsq"``.
        align_space: ``"disparity"`` (default) or ``"depth"``: the space of the ``"lsq"`` fit.
        near_threshold: optional positive depth (metres) for the near/far split.

    Returns:
        A dict of 0-dim detached tensors on the input's device, in the compute dtype
        (float32 for half-precision inputs, float64 for float64 inputs): ``abs_rel``,
        ``sq_rel``, ``rmse``, ``rmse_log``, ``log10``, ``silog``, ``d1``, ``d2``, ``d3``,
        ``count`` (number of images averaged), and with ``near_threshold`` the same keys
        prefixed by ``"near/"`` and ``"far/"`` plus ``"near/fraction"``. Nothing is
        synchronized: call ``.item()`` yourself when you need Python numbers.

    Raises:
        TypeError: non-tensor or non-floating ``pred``/``target``, non-bool ``mask``.
        ValueError: shape or device mismatch, ``min_depth >= max_depth``, non-positive
            bounds or ``near_threshold``, unknown ``align`` or ``align_space``.

    Example:
        >>> target = torch.tensor([[[1.0, 2.0], [4.0, 8.0]]])
        >>> pred = torch.tensor([[[1.0, 2.0], [4.0, 5.0]]])
        >>> m = depth_metrics(pred, target)
        >>> m["abs_rel"], m["sq_rel"], m["rmse"]  # 3/8/4, 9/8/4, sqrt(9/4)
        (tensor(0.0938), tensor(0.2812), tensor(1.5000))
        >>> m["rmse_log"], m["silog"]  # ln(1.6)/2, 100*ln(1.6)*sqrt(3)/4
        (tensor(0.2350), tensor(20.3518))
        >>> m["d1"], m["d2"], m["d3"], m["count"]  # delta = 1.6 for the last pixel
        (tensor(0.7500), tensor(0.7500), tensor(1.), tensor(1.))

        Median scaling recovers a prediction that is off by a global factor (medians 3
        and 1.5, the means of the two middle values):

        >>> depth_metrics(target / 2, target, align="median")["abs_rel"]
        tensor(0.)

        Near/far split at 3 m (the only error is on the 8 m pixel):

        >>> m = depth_metrics(pred, target, near_threshold=3.0)
        >>> m["near/abs_rel"], m["far/abs_rel"], m["near/fraction"]
        (tensor(0.), tensor(0.1875), tensor(0.5000))
    """
    sums = _batch_sums(pred, target, mask, min_depth, max_depth, align, align_space, near_threshold)
    return _finalize(sums)


class DepthMetrics:
    """Accumulate :func:`depth_metrics` over a dataset: the mean over *all* images.

    The protocol averages per-image metrics over the whole dataset, so averaging batch
    means would be wrong whenever batches hold different numbers of counted images. This
    accumulator keeps, for every metric, the running sum of per-image values and the
    number of counted images, on the device, without synchronizing in :meth:`update`.

    Args:
        min_depth, max_depth, align, align_space, near_threshold: as in
            :func:`depth_metrics`, fixed for the whole evaluation.

    Attributes:
        sums: dict of 0-dim tensors (per-image sums and image counts). Under distributed
            evaluation, ``all_reduce`` these (SUM) before :meth:`compute`, or use
            ``DepthMetricsTM`` (torchmetrics), which synchronizes them itself.

    Example:
        >>> metrics = DepthMetrics(max_depth=10.0)
        >>> target = torch.tensor([[[1.0, 2.0], [4.0, 8.0]]])
        >>> _ = metrics.update(target * 1.25, target)  # abs_rel 0.25
        >>> _ = metrics.update(torch.cat([target, target]), torch.cat([target, target]))
        >>> out = metrics.compute()
        >>> out["abs_rel"], out["count"]  # (0.25 + 0 + 0) / 3 images
        (0.0833..., 3.0)
    """

    def __init__(
        self,
        min_depth: float = 1e-3,
        max_depth: float = 80.0,
        align: Optional[str] = None,
        *,
        align_space: str = "disparity",
        near_threshold: Optional[float] = None,
    ) -> None:
        _check_config(min_depth, max_depth, align, align_space, near_threshold)
        self.min_depth = float(min_depth)
        self.max_depth = float(max_depth)
        self.align = align
        self.align_space = align_space
        self.near_threshold = None if near_threshold is None else float(near_threshold)
        self.sums: Dict[str, Tensor] = {}

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self.sums = {}

    def update(self, pred: Tensor, target: Tensor, mask: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Add a batch; returns that batch's :func:`depth_metrics` (tensors, no host sync)."""
        batch = _batch_sums(
            pred, target, mask, self.min_depth, self.max_depth, self.align, self.align_space, self.near_threshold
        )
        if not self.sums:
            self.sums = dict(batch)
        else:
            self.sums = {k: self.sums[k] + v for k, v in batch.items()}
        return _finalize(batch)

    def compute_tensors(self) -> Dict[str, Tensor]:
        """Dataset metrics as 0-dim tensors (no host sync); empty before the first update."""
        return _finalize(self.sums) if self.sums else {}

    def compute(self) -> Dict[str, float]:
        """Dataset metrics as Python floats (one host synchronization).

        Before the first update, or when no image had a valid pixel, metrics are 0.0 and
        ``count`` is 0.0.
        """
        result = self.compute_tensors()
        if not result:
            result = _finalize(_zero_sums(self.near_threshold is not None))
        values = torch.stack(list(result.values())).tolist()  # sync-ok: compute() returns Python floats, once
        return {k: float(v) for k, v in zip(result.keys(), values)}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(min_depth={self.min_depth}, max_depth={self.max_depth}, "
            f"align={self.align!r}, align_space={self.align_space!r}, near_threshold={self.near_threshold})"
        )


# ---------------------------------------------------------------------------------------
# torchmetrics integration (optional extra; torchmetrics is imported on first use only)
# ---------------------------------------------------------------------------------------


def _state_name(key: str) -> str:
    """The torchmetrics state holding the dataset sum of ``key`` (``"near/abs_rel"`` -> ``"sum_near_abs_rel"``)."""
    return "sum_" + key.replace("/", "_")


def _sum_keys(split: bool) -> Tuple[str, ...]:
    """The sufficient statistics accumulated for a configuration, in :func:`_batch_sums`' order."""
    return tuple(_zero_sums(split))


@functools.cache
def _torchmetrics_class() -> Type[torchmetrics.Metric]:
    """Build ``DepthMetricsTM`` (once): importing torchmetrics is deferred to this call."""
    try:
        import torchmetrics
    except ImportError as err:  # pragma: no cover - exercised with torchmetrics blocked
        raise ImportError(
            "depthloss.metrics.DepthMetricsTM needs torchmetrics: pip install 'depthloss[metrics]' "
            "(or use depthloss.metrics.DepthMetrics, which needs nothing else)"
        ) from err

    class DepthMetricsTM(torchmetrics.Metric):
        """:class:`DepthMetrics` as a ``torchmetrics.Metric``: the per-image protocol over a dataset.

        The states are the sufficient statistics :class:`DepthMetrics` keeps (for every
        metric the sum of its per-image values, and the number of counted images), each a
        0-dim tensor with ``dist_reduce_fx="sum"``, so torchmetrics' own synchronization
        (``compute()`` under DDP, or ``sync()``) all-reduces them and the result is the
        per-image average over the images of *all* processes, whatever their split.
        :meth:`update` never synchronizes the host; :meth:`compute` returns a dict of 0-dim
        tensors equal to ``DepthMetrics.compute_tensors()`` on the same batches. Calling
        the metric (``forward``) returns that batch's :func:`depth_metrics` and accumulates.

        Args:
            min_depth, max_depth, align, align_space, near_threshold: as in
                :func:`depth_metrics`, fixed for the whole evaluation.
            **kwargs: ``torchmetrics.Metric`` options (``sync_on_compute``,
                ``dist_sync_on_step``, ``process_group``, ``compute_on_cpu``, ...).

        State names are ``"sum_" + key`` with ``/`` replaced by ``_`` (``sum_abs_rel``,
        ``sum_count``, ``sum_near_abs_rel``, ...). Their dtype follows the inputs, like
        :class:`DepthMetrics`' sums (float32 for float32 and half-precision inputs,
        float64 for float64); ``reset()`` returns them to float32 zeros. Evaluating float64
        inputs under DDP, call ``metric.set_dtype(torch.float64)`` first, so that a process
        that got no batch gathers float64 states like the others.

        Example (Lightning): ``self.val_metrics.update(pred, target, mask)`` in
        ``validation_step``, then ``self.log_dict(self.val_metrics.compute())`` and
        ``self.val_metrics.reset()`` in ``on_validation_epoch_end``.
        """

        is_differentiable = False
        higher_is_better = None
        full_state_update = False  # the batch value needs the batch only (sum states merge)

        def __init__(
            self,
            min_depth: float = 1e-3,
            max_depth: float = 80.0,
            align: Optional[str] = None,
            *,
            align_space: str = "disparity",
            near_threshold: Optional[float] = None,
            **kwargs: Any,
        ) -> None:
            super().__init__(**kwargs)
            _check_config(min_depth, max_depth, align, align_space, near_threshold)
            self.min_depth = float(min_depth)
            self.max_depth = float(max_depth)
            self.align = align
            self.align_space = align_space
            self.near_threshold = None if near_threshold is None else float(near_threshold)
            self._sum_keys = _sum_keys(self.near_threshold is not None)
            for key in self._sum_keys:
                self.add_state(_state_name(key), default=torch.zeros(()), dist_reduce_fx="sum")

        def update(self, pred: Tensor, target: Tensor, mask: Optional[Tensor] = None) -> None:
            """Add a batch (no host synchronization)."""
            batch = _batch_sums(
                pred, target, mask, self.min_depth, self.max_depth, self.align, self.align_space, self.near_threshold
            )
            for key in self._sum_keys:
                name = _state_name(key)
                setattr(self, name, getattr(self, name) + batch[key])

        def compute(self) -> Dict[str, Tensor]:
            """Dataset metrics as 0-dim tensors (0 for every metric when no image counted)."""
            return _finalize({key: getattr(self, _state_name(key)) for key in self._sum_keys})

        def sums(self) -> Dict[str, Tensor]:
            """The accumulated sufficient statistics, keyed like ``DepthMetrics.sums`` (this process only)."""
            return {key: getattr(self, _state_name(key)) for key in self._sum_keys}

        def extra_repr(self) -> str:
            return (
                f"min_depth={self.min_depth}, max_depth={self.max_depth}, align={self.align!r}, "
                f"align_space={self.align_space!r}, near_threshold={self.near_threshold}"
            )

    # importable and picklable as depthloss.metrics.DepthMetricsTM
    DepthMetricsTM.__module__ = __name__
    DepthMetricsTM.__qualname__ = "DepthMetricsTM"
    return DepthMetricsTM


def __getattr__(name: str) -> Any:
    """Lazy attributes: ``DepthMetricsTM`` imports torchmetrics only when first accessed."""
    if name == "DepthMetricsTM":
        return _torchmetrics_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
