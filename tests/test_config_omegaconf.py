"""from_config with an OmegaConf / Hydra DictConfig (issue 15 item 4); skipped without omegaconf."""

from __future__ import annotations

import pytest
import torch

import depthloss

omegaconf = pytest.importorskip("omegaconf")

SEED_YAML = """
model:
  params:
    min_depth: 0.1
    max_depth: 80.0
    num_layers: 18          # a model key: ignored by the loss
  loss:
    supervised_method: sparse-near-field-ssi-silog
    supervised_num_scales: 2
    near_threshold: 1.5
    silog_weight_clamp: [0.7, 2.0]
    split_weights: ${model.loss.silog_weight_clamp}
"""


def test_seed_yaml_loads_directly() -> None:
    cfg = omegaconf.OmegaConf.create(SEED_YAML)
    sup = depthloss.from_config(cfg)
    assert sup.method == "sparse-near-field-ssi-silog" and sup.num_scales == 2
    assert sup.loss.input_space == "inverse"  # the seeds' pipeline predicts inverse depth
    assert sup.loss.config.near_threshold == 1.5
    assert sup.loss.config.silog_weight_clamp == [0.7, 2.0]
    assert sup.loss.config.split_weights == [0.7, 2.0]  # interpolation resolved
    assert sup.loss.max_depth == 80.0


def test_dictconfig_equals_dict() -> None:
    plain = {"supervised_method": "ssi-silog", "supervised_num_scales": 1, "alpha": 0.5}
    a = depthloss.from_config(plain)
    b = depthloss.from_config(omegaconf.OmegaConf.create(plain))
    target = torch.rand(2, 1, 16, 16) + 0.1
    pred = torch.rand(2, 1, 16, 16) + 0.1
    assert torch.equal(a(pred, target)["loss"], b(pred, target)["loss"])


def test_empty_model_section_names_the_key() -> None:
    with pytest.raises(ValueError, match="model.loss.supervised_method"):
        depthloss.from_config(omegaconf.OmegaConf.create("model:\n"))
    with pytest.raises(ValueError, match="'model'"):
        depthloss.from_config(omegaconf.OmegaConf.create({"model": 3}))


def test_unknown_key_still_raises() -> None:
    cfg = omegaconf.OmegaConf.create({"supervised_method": "silog", "lamda": 1.0})
    with pytest.raises(TypeError, match="lamda"):
        depthloss.from_config(cfg)
