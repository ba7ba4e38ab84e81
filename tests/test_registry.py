"""Tests of the loss registry (DESIGN §5) and ``python -m depthloss``.

Exact, case-insensitive names with an optional ``sparse-`` prefix and aliases; helpful
errors for unknown names (close matches) and unknown keywords (named, with a suggestion,
instead of the seed's silent ``**kwargs``); ``register_loss`` refusing duplicates and the
reserved prefix; wildcard listing; metadata; ``from_config`` with the seeds' YAML keys;
and the command-line listing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
import subprocess
import sys
from typing import Any, Dict, Iterator

import pytest

import depthloss
import depthloss.functional as DF
import depthloss.registry as registry
from depthloss import (
    AbsRelLoss,
    DepthLoss,
    EnhancedSSILoss,
    L1Loss,
    MiDaSLoss,
    NearFieldSSISilog,
    ProgressiveSSILoss,
    ScaleAdaptiveLoss,
    SILogLoss,
    SSILoss,
    SSISilogLoss,
    SSITrimLoss,
    SupervisedLoss,
    from_config,
    get_loss,
    list_losses,
    loss_info,
    register_loss,
)
from depthloss.__main__ import main
from depthloss.registry import parse_loss_name

#: DESIGN §4's table: every name the seed's get_loss_func knew, plus the two new losses
EXPECTED_CLASSES = {
    "l1": L1Loss,
    "mse": depthloss.MSELoss,
    "berhu": depthloss.BerHuLoss,
    "silog": SILogLoss,
    "abs_rel": AbsRelLoss,
    "ssi": SSILoss,
    "ssi-silog": SSISilogLoss,
    "enhanced-ssi": EnhancedSSILoss,
    "hdn": depthloss.HDNLoss,
    "hdn-random": depthloss.HDNRandomLoss,
    "progressive-ssi": ProgressiveSSILoss,
    "ssi-trim": SSITrimLoss,
    "midas": MiDaSLoss,
    "scale-adaptive": ScaleAdaptiveLoss,
    "near-field-ssi-silog": NearFieldSSISilog,
    "depth-pro": depthloss.DepthProLoss,
    "mage": depthloss.MAGELoss,
    "male": depthloss.MALELoss,
    "msge": depthloss.MSGELoss,
    "grad-l1": depthloss.GradL1Loss,
    "ranking": depthloss.RankingLoss,
    "temporal-gradient-matching": depthloss.TemporalGradientMatchingLoss,
    "video-depth": depthloss.VideoDepthLoss,
    "gaussian-nll": depthloss.GaussianNLLLoss,
    "laplace-nll": depthloss.LaplaceNLLLoss,
    "confidence": depthloss.ConfidenceLoss,
    "local-ssi": depthloss.LocalSSILoss,
    "normal": depthloss.NormalLoss,
    "vnl": depthloss.VNLLoss,
}


@pytest.fixture
def clean_registry() -> Iterator[None]:
    """Restore the registry after a test registers losses (other tests must not see them)."""
    saved_registry = dict(registry._REGISTRY)
    saved_aliases = dict(registry._ALIASES)
    try:
        yield
    finally:
        registry._REGISTRY.clear()
        registry._REGISTRY.update(saved_registry)
        registry._ALIASES.clear()
        registry._ALIASES.update(saved_aliases)


# ----------------------------------------------------------------------------------------
# names
# ----------------------------------------------------------------------------------------
def test_registered_names_are_the_design_table() -> None:
    assert list_losses() == sorted(EXPECTED_CLASSES)


@pytest.mark.parametrize("name", sorted(EXPECTED_CLASSES))
def test_exact_case_insensitive_and_sparse_names(name: str) -> None:
    cls = EXPECTED_CLASSES[name]
    for spelling in (name, name.upper(), name.title(), f"  {name} ", f"sparse-{name}", f"SPARSE-{name.upper()}"):
        module = get_loss(spelling, input_space="inverse")
        assert type(module) is cls, spelling
    assert parse_loss_name(name.upper()) == (name, False)
    assert parse_loss_name(f"Sparse-{name}") == (name, True)
    info = loss_info(f"sparse-{name.upper()}")
    assert info.name == name and info.cls is cls


def test_aliases() -> None:
    for spelling in ("ssi-silog-nearfield", "SSI-SILog-NearField", "sparse-ssi-silog-nearfield"):
        assert type(get_loss(spelling, input_space="inverse")) is NearFieldSSISilog
    assert parse_loss_name("Sparse-SSI-SILog-NearField") == ("near-field-ssi-silog", True)
    assert type(get_loss("abs-rel", input_space="depth")) is AbsRelLoss
    assert loss_info("ssi-silog-nearfield").name == "near-field-ssi-silog"
    assert "ssi-silog-nearfield" not in list_losses()  # aliases are not listed as losses


def test_no_suffix_matching() -> None:
    """The seed's ``endswith`` chain: 'enhanced-ssi' -> SSILoss, anything '*l1' -> L1."""
    assert type(get_loss("enhanced-ssi", input_space="inverse")) is EnhancedSSILoss
    assert type(get_loss("progressive-ssi", input_space="inverse")) is ProgressiveSSILoss
    assert type(get_loss("sparse-ssi-silog", input_space="inverse")) is SSISilogLoss
    for name in ("my-ssi", "supervised-l1", "xsilog", "sparse-", "ssi-", "sparse-sparse-l1"):
        with pytest.raises(ValueError, match="unknown loss"):
            get_loss(name, input_space="inverse")


@pytest.mark.parametrize(
    "typo,suggestion",
    [
        ("scale-adaptve", "scale-adaptive"),
        ("sparse-scale-adaptve", "scale-adaptive"),
        ("ssi_silog", "ssi-silog"),
        ("near-field-ssi-slog", "near-field-ssi-silog"),
        ("midass", "midas"),
    ],
)
def test_unknown_name_suggests_close_matches(typo: str, suggestion: str) -> None:
    with pytest.raises(ValueError) as info:
        get_loss(typo)
    message = str(info.value)
    assert repr(typo) in message
    assert re.search(r"did you mean[^?]*" + re.escape(repr(suggestion)), message), message
    with pytest.raises(ValueError):
        loss_info(typo)


def test_unknown_name_without_close_match_lists_registered_losses() -> None:
    with pytest.raises(ValueError) as info:
        get_loss("zzzzzz")
    message = str(info.value)
    assert "did you mean" not in message
    for name in list_losses():
        assert name in message


def test_name_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="str"):
        get_loss(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="str"):
        loss_info(None)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------
# keywords
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,typo,suggestion",
    [
        ("silog", "lamda", "lambd"),
        ("scale-adaptive", "lambda_sq", "lambda_sg"),
        ("scale-adaptive", "num_scale", "num_scales"),
        ("near-field-ssi-silog", "near_wieght", "near_weight"),
        ("ssi-trim", "trimm", "trim"),
        ("l1", "input_spce", "input_space"),
    ],
)
def test_unknown_keyword_raises_type_error_naming_it(name: str, typo: str, suggestion: str) -> None:
    with pytest.raises(TypeError) as info:
        get_loss(name, **{typo: 1.0})
    message = str(info.value)
    assert repr(typo) in message
    assert re.search(r"did you mean[^?]*" + re.escape(repr(suggestion)), message), message


def test_unknown_keyword_without_close_match() -> None:
    with pytest.raises(TypeError, match="'completely_unrelated'"):
        get_loss("mse", completely_unrelated=True)
    with pytest.raises(TypeError, match="'weights'"):  # a forward argument, not a hyper-parameter
        get_loss("near-field-ssi-silog", weights=None)


@pytest.mark.parametrize("name", sorted(EXPECTED_CLASSES))
def test_base_keywords_accepted_by_every_loss(name: str) -> None:
    module = get_loss(name, input_space="depth", reduction="sum", scope="batch", min_depth=0.5, max_depth=50.0)
    assert isinstance(module, DepthLoss)
    assert (module.input_space, module.reduction, module.scope) == ("depth", "sum", "batch")
    assert (module.min_depth, module.max_depth) == (0.5, 50.0)


def test_config_keywords_reach_the_module() -> None:
    sa = get_loss(
        "sparse-scale-adaptive",
        input_space="depth",
        lambda_sg=0.3,
        num_scales=2,
        alpha_schedule="cosine",
        use_inv_depth=True,
    )
    assert (sa.config.lambda_sg, sa.config.num_scales, sa.config.alpha_schedule) == (0.3, 2, "cosine")
    assert sa.use_inv_depth is True
    nf = get_loss("ssi-silog-nearfield", input_space="inverse", near_weight=3.0, weight_mode="step", grad_clip=0.5)
    assert (nf.config.near_weight, nf.config.weight_mode, nf.config.grad_clip) == (3.0, "step", 0.5)
    assert get_loss("silog", input_space="depth", lambd=1.0).lambd == 1.0
    assert get_loss("ssi-trim", input_space="inverse", trim=0.1).trim == 0.1


# ----------------------------------------------------------------------------------------
# register_loss
# ----------------------------------------------------------------------------------------
def _register(name: str, **kwargs: Any):
    return register_loss(name, **kwargs)


def test_register_new_loss(clean_registry: None) -> None:
    @_register("My-L1", aliases=("my-other-l1",))
    class MyL1(L1Loss):
        """A test loss (:func:`depthloss.functional.l1`).

        More text that is not the summary.
        """

        formula = "mean|p - g|"
        when = "never"
        loss_space = "depth"
        invariances = ("shift",)
        uses_progress = True
        scopes = ("image",)
        inputs = ("weights",)

    assert "my-l1" in list_losses()
    assert type(get_loss("MY-L1", input_space="depth")) is MyL1
    assert type(get_loss("sparse-my-other-l1", input_space="depth")) is MyL1
    info = loss_info("my-l1")
    # every field comes from the class: the docstring's first line (without the (:func:...) tail)
    # and the class attributes; the defaults from the __init__ signatures
    assert info.cls is MyL1 and info.aliases == ("my-other-l1",)
    assert info.summary == "A test loss"
    assert (info.formula, info.when, info.loss_space) == ("mean|p - g|", "never", "depth")
    assert info.invariances == ("shift",) and info.uses_progress and info.scopes == ("image",)
    assert info.functional is DF.l1 and info.inputs == ("weights",)
    assert MyL1.registry_name == "my-l1"  # type: ignore[attr-defined]
    assert "input_space" in info.defaults and info.defaults["input_space"] is None


def test_register_takes_no_metadata_keywords() -> None:
    """Metadata is never stated twice: register_loss(name, aliases=()) only."""
    with pytest.raises(TypeError):
        register_loss("never-registered", summary="x", formula="y", loss_space="input")  # type: ignore[call-arg]
    assert "never-registered" not in list_losses()


def test_registry_restored_after_registration_test() -> None:
    """Runs after test_register_new_loss: the fixture removed its registration."""
    assert "my-l1" not in list_losses()
    with pytest.raises(ValueError):
        get_loss("my-other-l1")


@pytest.mark.parametrize(
    "name,aliases",
    [
        ("l1", ()),  # existing name
        ("L1", ()),  # case-insensitively
        ("abs-rel", ()),  # an existing alias
        ("brand-new", ("ssi-silog-nearfield",)),  # alias collides with an alias
        ("brand-new", ("midas",)),  # alias collides with a name
        ("brand-new", ("brand-new",)),  # alias collides with its own name
    ],
)
def test_register_rejects_duplicates(clean_registry: None, name: str, aliases: tuple) -> None:
    before = (dict(registry._REGISTRY), dict(registry._ALIASES))
    with pytest.raises(ValueError, match="already registered"):
        _register(name, aliases=aliases)
    assert before == (registry._REGISTRY, registry._ALIASES)


def test_register_rejects_late_duplicates(clean_registry: None) -> None:
    """The names are checked again when the decorator is applied (reused, or taken meanwhile)."""
    decorator = _register("twice")
    first = decorator(type("First", (L1Loss,), {}))
    with pytest.raises(ValueError, match="already registered"):
        decorator(type("Second", (L1Loss,), {}))
    assert loss_info("twice").cls is first

    early, late = _register("raced"), _register("raced")
    early(type("Early", (L1Loss,), {}))
    with pytest.raises(ValueError, match="already registered"):
        late(type("Late", (L1Loss,), {}))
    assert loss_info("raced").cls.__name__ == "Early"


@pytest.mark.parametrize("name,aliases", [("sparse-foo", ()), ("Sparse-Foo", ()), ("foo", ("sparse-bar",))])
def test_register_rejects_sparse_prefix(clean_registry: None, name: str, aliases: tuple) -> None:
    before = dict(registry._REGISTRY)
    with pytest.raises(ValueError, match="sparse-"):
        _register(name, aliases=aliases)
    assert before == registry._REGISTRY


# ----------------------------------------------------------------------------------------
# list_losses, loss_info
# ----------------------------------------------------------------------------------------
def test_list_losses_wildcards() -> None:
    assert list_losses("ssi*") == ["ssi", "ssi-silog", "ssi-trim"]
    assert list_losses("*SSI*") == [
        "enhanced-ssi",
        "gaussian-nll",  # gau-ssi-an
        "local-ssi",
        "near-field-ssi-silog",
        "progressive-ssi",
        "ssi",
        "ssi-silog",
        "ssi-trim",
    ]
    assert list_losses("nothing*") == []
    assert list_losses("?1") == ["l1"]
    assert list_losses() == list_losses("*") == sorted(list_losses())


def test_loss_info_fields() -> None:
    trim = loss_info("ssi-trim")
    assert trim.cls is SSITrimLoss and trim.functional is DF.ssi_trim
    assert trim.loss_space == "inverse" and trim.invariances == ("scale", "shift")
    assert trim.uses_progress is False and trim.per_image is True
    assert trim.defaults["trim"] == 0.2 and trim.defaults["alpha"] == 0.5 and trim.defaults["scales"] == 4

    sa = loss_info("sparse-scale-adaptive")
    assert sa.cls is ScaleAdaptiveLoss and sa.functional is DF.scale_adaptive and sa.uses_progress
    expected_sa = {  # DESIGN §4
        "min_depth": 0.1,
        "max_depth": 100.0,
        "lambda_sg": 0.5,
        "use_inv_depth": False,
        "num_scales": 4,
        "alpha_schedule": "linear",
        "alpha_start": 1.0,
        "alpha_end": 0.0,
        "scale_schedule": "linear",
        "gt_downsample": "mean",
    }
    assert {k: sa.defaults[k] for k in expected_sa} == expected_sa

    nf = loss_info("ssi-silog-nearfield")
    assert nf.name == "near-field-ssi-silog" and nf.aliases == ("ssi-silog-nearfield",)
    assert nf.cls is NearFieldSSISilog and nf.functional is DF.near_field_ssi_silog and nf.uses_progress
    expected_nf = {  # DESIGN §4
        "alpha": 0.85,
        "silog_ratio": 10.0,
        "silog_ratio2": 0.85,
        "ssi_weight": 0.7,
        "silog_weight": 0.3,
        "near_threshold": 1.0,
        "near_weight": 5.0,
        "transition": 0.3,
        "weight_mode": "smooth",
        "ssi_weighting": "weighted-mean",
        "silog_weight_clamp": (0.7, 2.0),
        "ssi_weight_clamp": (0.5, 5.0),
        "threshold_schedule": None,
        "combine": "sum",
        "grad_clip": None,
    }
    assert {k: nf.defaults[k] for k in expected_nf} == expected_nf

    silog = loss_info("silog")
    assert silog.loss_space == "depth" and silog.invariances == ()
    assert silog.defaults["lambd"] == 0.85 and silog.defaults["ratio"] == 10.0  # packnet / BTS constants
    assert loss_info("enhanced-ssi").functional is DF.enhanced_ssi and loss_info("enhanced-ssi").uses_progress
    assert loss_info("progressive-ssi").functional is DF.progressive_ssi
    assert loss_info("midas").invariances == ("scale", "shift")
    with pytest.raises(dataclasses.FrozenInstanceError):
        trim.summary = "changed"  # type: ignore[misc]


@pytest.mark.parametrize("name", sorted(EXPECTED_CLASSES))
def test_every_loss_has_metadata(name: str) -> None:
    info = loss_info(name)
    assert info.name == name and info.summary and info.formula and info.loss_space
    assert issubclass(info.cls, DepthLoss) and info.cls.registry_name == name
    assert info.uses_progress == info.cls.uses_progress
    for key in ("input_space", "reduction", "scope", "min_depth", "max_depth"):
        assert key in info.defaults


# ----------------------------------------------------------------------------------------
# from_config
# ----------------------------------------------------------------------------------------
#: the seed's train_*.yaml (scale_adaptive_integration_report.md §1.1) as parsed by a YAML loader
SEED_YAML: Dict[str, Any] = {
    "model": {
        "params": {"min_depth": 0.0, "max_depth": 80.0, "crop": "garg"},
        "loss": {
            "supervised_method": "sparse-scale-adaptive",
            "supervised_num_scales": 4,
            "lambda_sg": 0.5,
            "use_inv_depth": False,
            "alpha_schedule": "linear",
        },
    }
}


def test_from_config_nested_seed_yaml() -> None:
    original = repr(SEED_YAML)
    sup = from_config(SEED_YAML)
    assert isinstance(sup, SupervisedLoss)
    assert sup.method == "sparse-scale-adaptive" and sup.sparse and sup.num_scales == 4
    assert type(sup.loss) is ScaleAdaptiveLoss
    assert (sup.loss.min_depth, sup.loss.max_depth) == (0.0, 80.0)  # from model.params
    assert sup.loss.config.lambda_sg == 0.5 and sup.loss.use_inv_depth is False
    assert repr(SEED_YAML) == original  # the mapping is not modified


def test_from_config_flat_loss_mapping() -> None:
    config = {
        "supervised_method": "sparse-scale-adaptive",
        "supervised_num_scales": 2,
        "lambda_sg": 0.3,
        "use_inv_depth": True,
        "alpha_schedule": "cosine",
        "min_depth": 0.5,
        "max_depth": 40.0,
    }
    sup = from_config(config)
    assert sup.num_scales == 2
    assert (sup.loss.config.lambda_sg, sup.loss.config.alpha_schedule, sup.loss.use_inv_depth) == (0.3, "cosine", True)
    assert (sup.loss.min_depth, sup.loss.max_depth) == (0.5, 40.0)
    assert "supervised_method" in config  # not popped from the caller's dict


def test_from_config_other_methods_and_defaults() -> None:
    sup = from_config({"supervised_method": "sparse-ssi-silog-nearfield", "near_weight": 3.0})
    assert type(sup.loss) is NearFieldSSISilog and sup.loss.config.near_weight == 3.0
    assert sup.num_scales == 4  # supervised_num_scales defaults to 4
    assert sup.loss.min_depth is None and sup.loss.max_depth is None
    nested = from_config({"model": {"loss": {"supervised_method": "Enhanced-SSI", "supervised_num_scales": 1}}})
    assert type(nested.loss) is EnhancedSSILoss and nested.num_scales == 1 and not nested.sparse
    with_params = from_config(
        {"model": {"params": {"max_depth": 10.0}, "loss": {"supervised_method": "silog", "lambd": 1.0}}}
    )
    assert with_params.loss.max_depth == 10.0 and with_params.loss.min_depth is None and with_params.loss.lambd == 1.0


def test_from_config_errors() -> None:
    with pytest.raises(TypeError, match="silog_ratoi"):
        from_config({"supervised_method": "ssi-silog", "silog_ratoi": 10.0})
    nested_typo = {"model": {"params": {}, "loss": {"supervised_method": "scale-adaptive", "lamda_sg": 0.5}}}
    with pytest.raises(TypeError, match="lamda_sg"):
        from_config(nested_typo)
    with pytest.raises(ValueError, match="supervised_method"):
        from_config({"supervised_num_scales": 4, "lambda_sg": 0.5})
    with pytest.raises(ValueError, match="supervised_method"):
        from_config({"model": {"params": {"min_depth": 0.0}, "loss": {}}})
    with pytest.raises(ValueError, match="scale-adaptve"):
        from_config({"supervised_method": "scale-adaptve"})
    with pytest.raises(ValueError, match="num_scales"):
        from_config({"supervised_method": "l1", "supervised_num_scales": 0})
    with pytest.raises(TypeError, match="mapping"):
        from_config([("supervised_method", "l1")])  # type: ignore[arg-type]


def test_from_config_ignore_drops_keys() -> None:
    config = {"supervised_method": "l1", "progress_scheduling": True, "var_weight": 0.1}
    with pytest.raises(TypeError, match="progress_scheduling"):
        from_config(config)
    sup = from_config(config, ignore=("progress_scheduling", "var_weight", "not_present"))
    assert type(sup.loss) is L1Loss
    nested = {"model": {"params": {"min_depth": 0.1}, "loss": {"supervised_method": "l1", "extra": 1}}}
    assert from_config(nested, ignore=["extra"]).loss.min_depth == 0.1


# ----------------------------------------------------------------------------------------
# python -m depthloss
# ----------------------------------------------------------------------------------------
def _listed_names(text: str) -> list:
    return [m.group(1) for m in re.finditer(r"^  (\S+)\s", text, flags=re.MULTILINE)]


def test_main_lists_every_loss_one_line_each() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([]) == 0
    text = out.getvalue()
    assert _listed_names(text) == list_losses()
    for name in list_losses():
        lines = [line for line in text.splitlines() if line.startswith(f"  {name} ")]
        assert len(lines) == 1, name
        assert loss_info(name).summary in lines[0]
    assert f"{len(list_losses())} registered losses" in text
    assert "alias: ssi-silog-nearfield" in text


def test_main_list_with_pattern() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["list", "ssi*"]) == 0
    assert _listed_names(out.getvalue()) == ["ssi", "ssi-silog", "ssi-trim"]


def test_python_dash_m_depthloss() -> None:
    result = subprocess.run([sys.executable, "-m", "depthloss"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert _listed_names(result.stdout) == list_losses()


# ----------------------------------------------------------------------------------------
# one source of truth, input space, error messages (issue 11 item 5, issue 12 items 3 and 6)
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(EXPECTED_CLASSES))
def test_metadata_is_read_from_the_class(name: str) -> None:
    info = loss_info(name)
    cls = info.cls
    for field in ("formula", "when", "loss_space", "uses_progress", "inputs"):
        assert getattr(info, field) == getattr(cls, field), field
    assert info.invariances == tuple(cls.invariances) and info.scopes == tuple(cls.scopes)
    assert info.functional is cls.functional
    first_line = (cls.__doc__ or "").strip().splitlines()[0]
    assert first_line.startswith(info.summary) and ":func:" not in info.summary
    assert info.loss_space in ("input", "inverse", "depth", "inverse+depth")
    assert info.defaults["input_space"] is None  # required, never defaulted


def test_scale_adaptive_metadata_agrees_with_its_class() -> None:
    """Issue 11: scale-adaptive was registered with loss_space='depth' while the class said 'input'."""
    assert loss_info("scale-adaptive").loss_space == ScaleAdaptiveLoss.loss_space == "depth"


def test_list_losses_names_its_argument() -> None:
    """Issue 12 item 6: list_losses(None) said 'loss name must be a str'; it names ``pattern``."""
    with pytest.raises(TypeError, match="^pattern must be a str, got NoneType"):
        list_losses(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="loss name must be a str"):
        get_loss(None, input_space="depth")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(EXPECTED_CLASSES))
def test_get_loss_requires_input_space(name: str) -> None:
    with pytest.raises(TypeError, match=r"needs input_space: 'depth' if .* 'inverse' if"):
        get_loss(name)
    with pytest.raises(ValueError, match="input_space must be one of 'inverse', 'depth'"):
        get_loss(name, input_space="metric")


def test_from_config_defaults_to_inverse_depth_and_says_so() -> None:
    sup = from_config({"supervised_method": "midas"})
    assert sup.loss.input_space == "inverse"
    assert "inverse" in (from_config.__doc__ or "") and "input_space" in (from_config.__doc__ or "")
    assert from_config({"supervised_method": "midas", "input_space": "depth"}).loss.input_space == "depth"
    nested = from_config({"model": {"loss": {"supervised_method": "silog", "input_space": "depth"}}})
    assert nested.loss.input_space == "depth"


@pytest.mark.parametrize(
    "config,key",
    [({"model": None}, "model"), ({"model": {"loss": None}}, "model.loss"), ({"model": {"loss": 3}}, "model.loss"),
     ({"model": {"params": [1], "loss": {"supervised_method": "l1"}}}, "model.params")],
)  # fmt: skip
def test_from_config_empty_or_bad_sections_name_the_key(config: Dict[str, Any], key: str) -> None:
    """Issue 12 item 6: a YAML ``model:`` with nothing under it raised AttributeError."""
    with pytest.raises(ValueError, match=re.escape(key)):
        from_config(config)


def test_listing_shows_each_loss_space() -> None:
    """Issue 12 item 3: ``python -m depthloss`` shows, for each loss, the space it is computed in."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main([])
    for name in list_losses():
        line = next(line for line in out.getvalue().splitlines() if line.startswith(f"  {name} "))
        assert f"[{loss_info(name).loss_space}" in line, line
