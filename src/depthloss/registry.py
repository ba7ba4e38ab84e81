"""Name -> loss registry: exact, case-insensitive names, an optional ``sparse-`` prefix, metadata.

The seed's ``get_loss_func`` matched names with ``str.endswith``, so ``"enhanced-ssi"`` and
``"progressive-ssi"`` silently resolved to plain ``ssi`` (they end in ``"ssi"``, which was
tested first), and it swallowed unknown keyword arguments. Here names match exactly and
unknown keywords raise.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Type, TypeVar

from torch import nn

__all__ = [
    "LossInfo",
    "get_loss",
    "list_losses",
    "loss_info",
    "parse_loss_name",
    "register_loss",
]

SPARSE_PREFIX = "sparse-"

T = TypeVar("T", bound=Type[nn.Module])


@dataclass(frozen=True)
class LossInfo:
    """Metadata of a registered loss.

    Attributes:
        name: canonical registry name.
        cls: the module class.
        summary: one line for listings.
        formula: the definition, in plain text.
        loss_space: where the loss is computed: ``"input"`` (whatever the maps hold),
            ``"inverse"`` depth, ``"depth"``, or a mix such as ``"inverse+depth"``.
        invariances: transformations of ``pred`` the loss ignores, e.g. ``"scale"``, ``"shift"``.
        uses_progress: whether the loss changes with training progress.
        per_image: whether it computes statistics per image (so it is DDP-invariant with
            ``reduction="mean"`` and equal images per rank).
        scopes: the ``scope`` values it accepts (``"global"``: batch statistics all-reduced
            across ranks).
        when: when to use it.
        aliases: other accepted names.
        functional: the functional kernel the module wraps, if there is one.
        defaults: constructor keyword defaults (``input_space`` is required: its default is None).
        inputs: keyword inputs of ``forward`` beyond ``pred, target, mask, progress``.
        input_layout: ``"image"`` (``(B, 1, H, W)`` / ``(B, H, W)`` maps) or ``"video"``
            (``(B, T, H, W)`` sequences).

    Every field is derived from the module class (its docstring's first line, its class
    attributes and its ``__init__`` signatures), never stated twice.
    """

    name: str
    cls: Type[nn.Module]
    summary: str
    formula: str
    loss_space: str
    invariances: Tuple[str, ...] = ()
    uses_progress: bool = False
    per_image: bool = True
    scopes: Tuple[str, ...] = ("image", "batch")
    when: str = ""
    aliases: Tuple[str, ...] = ()
    functional: Optional[Callable[..., Any]] = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    inputs: Tuple[str, ...] = ()
    input_layout: str = "image"


_REGISTRY: Dict[str, LossInfo] = {}
_ALIASES: Dict[str, str] = {}


def _normalize(name: Any, what: str = "loss name") -> str:
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str, got {type(name).__name__}")
    return name.strip().lower()


def constructor_defaults(cls: Type[nn.Module]) -> Dict[str, Any]:
    """Keyword arguments a loss class accepts, with defaults (``config_class`` fields included)."""
    out: Dict[str, Any] = {}
    for klass in cls.__mro__:  # subclasses pass **kwargs on to their base: collect every level
        if klass is nn.Module or klass is object:
            break
        if "__init__" not in vars(klass):
            continue
        for p in inspect.signature(vars(klass)["__init__"]).parameters.values():
            if p.name == "self" or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                continue
            out.setdefault(p.name, None if p.default is inspect.Parameter.empty else p.default)
    return out


def _check_new_names(names: Sequence[str]) -> None:
    """Raise ``ValueError`` if a name is reserved, already registered, or given twice."""
    seen: set[str] = set()
    for n in names:
        if n.startswith(SPARSE_PREFIX):
            raise ValueError(
                f"loss name {n!r} must not start with {SPARSE_PREFIX!r} (it is a prefix for sparse targets)"
            )
        if n in _REGISTRY or n in _ALIASES or n in seen:
            raise ValueError(f"loss name {n!r} is already registered")
        seen.add(n)


def _summary(cls: Type[nn.Module]) -> str:
    """The first line of the class docstring, without its trailing reference to the functional."""
    first = (inspect.getdoc(cls) or cls.__name__).strip().splitlines()[0].rstrip(".")
    return first.split(" (:func:")[0].strip()


def register_loss(name: str, *, aliases: Sequence[str] = ()) -> Callable[[T], T]:
    r"""Class decorator registering a loss module under ``name`` (and ``aliases``).

    The metadata (:class:`LossInfo`) is read from the class: the first docstring line is
    the summary; ``formula``, ``when``, ``loss_space``, ``invariances``, ``uses_progress``,
    ``scopes``, ``functional`` and ``inputs`` are class attributes (see
    :class:`~depthloss.nn.DepthLoss`); the defaults come from the ``__init__`` signatures.

    Raises:
        ValueError: if the name or an alias is already registered, or starts with ``sparse-``.

    Example:
        >>> from depthloss.nn import L1Loss
        >>> @register_loss("my-l1")
        ... class MyL1(L1Loss):
        ...     '''L1 again.'''
        >>> get_loss("MY-L1", input_space="depth").__class__.__name__
        'MyL1'
        >>> loss_info("my-l1").summary
        'L1 again'
        >>> _ = _REGISTRY.pop("my-l1")  # keep the doctest side-effect free
    """
    key = _normalize(name)
    names = [key] + [_normalize(a) for a in aliases]
    _check_new_names(names)

    def decorator(cls: T) -> T:
        _check_new_names(names)  # again: the names may have been taken since (or this decorator reused)
        _REGISTRY[key] = LossInfo(
            name=key,
            cls=cls,
            summary=_summary(cls),
            formula=getattr(cls, "formula", ""),
            loss_space=getattr(cls, "loss_space", "input"),
            invariances=tuple(getattr(cls, "invariances", ())),
            uses_progress=bool(getattr(cls, "uses_progress", False)),
            per_image=True,
            scopes=tuple(getattr(cls, "scopes", ("image", "batch"))),
            when=getattr(cls, "when", ""),
            aliases=tuple(names[1:]),
            functional=getattr(cls, "functional", None),
            defaults=constructor_defaults(cls),
            inputs=tuple(getattr(cls, "inputs", ())),
            input_layout=getattr(cls, "input_layout", "image"),
        )
        for alias in names[1:]:
            _ALIASES[alias] = key
        cls.registry_name = key  # type: ignore[attr-defined]
        return cls

    return decorator


def parse_loss_name(name: str) -> Tuple[str, bool]:
    """Resolve ``name`` to ``(canonical_name, sparse)``; unknown names raise ``ValueError``.

    Example:
        >>> parse_loss_name("Sparse-SSI-SILog-NearField")
        ('near-field-ssi-silog', True)
    """
    key = _normalize(name)
    sparse = key.startswith(SPARSE_PREFIX)
    if sparse:
        key = key[len(SPARSE_PREFIX) :]
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        known = sorted(_REGISTRY) + sorted(_ALIASES)
        close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"unknown loss {name!r}{hint} Registered losses: {', '.join(sorted(_REGISTRY))}")
    return key, sparse


def loss_info(name: str) -> LossInfo:
    """Metadata of a registered loss (``sparse-`` prefix and aliases accepted).

    Example:
        >>> info = loss_info("ssi-trim")
        >>> info.loss_space, info.invariances
        ('inverse', ('scale', 'shift'))
    """
    return _REGISTRY[parse_loss_name(name)[0]]


def list_losses(pattern: str = "*") -> List[str]:
    """Sorted canonical names matching a case-insensitive shell wildcard.

    Example:
        >>> list_losses("ssi*")
        ['ssi', 'ssi-silog', 'ssi-trim']
    """
    pat = _normalize(pattern, "pattern")
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pat))


def _check_kwargs(info: LossInfo, kwargs: Mapping[str, Any]) -> None:
    for k in kwargs:
        if k not in info.defaults:
            close = difflib.get_close_matches(k, list(info.defaults), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise TypeError(
                f"{info.cls.__name__} ({info.name!r}) got an unexpected keyword argument {k!r}{hint} "
                f"Accepted: {', '.join(sorted(info.defaults))}"
            )


def get_loss(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered loss module by name.

    Names are exact and case-insensitive, may carry the ``sparse-`` prefix (it marks sparse
    targets for :class:`~depthloss.nn.SupervisedLoss`; the module is the same) and may be
    an alias. ``input_space`` (``"depth"`` or ``"inverse"``) is required.

    Raises:
        ValueError: unknown name (the message lists close matches).
        TypeError: a keyword the loss does not accept (the message names it).

    Example:
        >>> get_loss("sparse-scale-adaptive", input_space="depth", lambda_sg=0.3).__class__.__name__
        'ScaleAdaptiveLoss'
        >>> get_loss("enhanced-ssi", input_space="inverse").__class__.__name__  # not 'SSILoss' (the seed's suffix bug)
        'EnhancedSSILoss'
    """
    info = _REGISTRY[parse_loss_name(name)[0]]
    _check_kwargs(info, kwargs)
    return info.cls(**kwargs)
