"""Build the multi-scale driver from the seeds' configuration keys (a dict or an OmegaConf config)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Dict, Sequence

from depthloss.nn.supervised import SupervisedLoss

__all__ = ["SEED_INPUT_SPACE", "from_config"]

#: the seeds' packnet-sfm pipeline: networks predict inverse depth
SEED_INPUT_SPACE = "inverse"


def _plain(config: Any) -> Any:
    """An OmegaConf / Hydra ``DictConfig`` as plain containers (interpolations resolved); anything else as is."""
    if type(config).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf  # only reachable when omegaconf made the object

        return OmegaConf.to_container(config, resolve=True)
    return config


def _section(mapping: Mapping[str, Any], key: str, where: str) -> Dict[str, Any]:
    """``mapping[key]`` as a dict: missing or empty (a YAML key with nothing under it) gives ``{}``."""
    value = mapping.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"config key {where} must be a mapping of settings, got {type(value).__name__}: {value!r}")
    return dict(value)


def from_config(config: Mapping[str, Any], *, ignore: Sequence[str] = ()) -> SupervisedLoss:
    """Build a :class:`~depthloss.nn.SupervisedLoss` from the seeds' configuration keys.

    Accepts a mapping or an OmegaConf / Hydra ``DictConfig`` (the seeds' YAML loaded as is):
    either the flat ``model.loss`` mapping (``supervised_method``, ``supervised_num_scales``,
    loss parameters, optionally ``min_depth``/``max_depth``) or a nested
    ``{"model": {"params": {...}, "loss": {...}}}`` mapping, where ``min_depth`` and
    ``max_depth`` come from ``model.params`` (a key in ``model.loss`` wins; other ``params``
    keys belong to the model and are ignored). Every remaining key must be a parameter of the
    loss (a ``num_scales`` key is the loss's own, e.g. ``scale-adaptive``'s pyramid depth; the
    driver's is ``supervised_num_scales``); keys listed in ``ignore`` are dropped explicitly
    (unknown keys raise ``TypeError``).

    ``input_space`` defaults to ``"inverse"``: the seeds' packnet-sfm networks predict inverse
    depth. Give ``input_space: depth`` in the loss section for a network that predicts depth.

    Example:
        >>> cfg = {"model": {"params": {"min_depth": 0.0, "max_depth": 80.0},
        ...        "loss": {"supervised_method": "sparse-scale-adaptive",
        ...                 "supervised_num_scales": 4, "lambda_sg": 0.5,
        ...                 "use_inv_depth": False, "alpha_schedule": "linear"}}}
        >>> sup = from_config(cfg)
        >>> sup.method, sup.num_scales, sup.loss.max_depth, sup.loss.input_space
        ('sparse-scale-adaptive', 4, 80.0, 'inverse')
    """
    config = _plain(config)
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a mapping (or an OmegaConf DictConfig), got {type(config).__name__}")
    flat: Dict[str, Any] = {}
    if "model" in config:
        model = _section(config, "model", "'model'")
        params = _section(model, "params", "'model.params'")
        for key in ("min_depth", "max_depth"):
            if key in params:
                flat[key] = params[key]
        flat.update(_section(model, "loss", "'model.loss'"))
        where = "'model.loss.supervised_method'"
    else:
        flat.update(config)
        where = "'supervised_method'"
    for key in ignore:
        flat.pop(key, None)
    if "supervised_method" not in flat:
        raise ValueError(f"config needs {where} (e.g. 'sparse-scale-adaptive')")
    method = flat.pop("supervised_method")
    num_scales = flat.pop("supervised_num_scales", 4)
    flat.setdefault("input_space", SEED_INPUT_SPACE)
    # every other key is the loss's (scale-adaptive's own `num_scales` included: the driver's is
    # `supervised_num_scales`)
    return SupervisedLoss(method=method, num_scales=num_scales, loss_options=flat)
