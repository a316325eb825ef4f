"""Named families: a short name (``"organism"``) that :func:`probes.models.family.load_family`
resolves to a family spec (a folder, a family file or a ``{variant: path}`` mapping).

A name maps to a *factory*: a callable taking no arguments that returns such a spec, or the
``"module:function"`` string of one, imported only when the name is asked for (like a package
entry point). The kit's own organism is registered that way, so this module, and
:mod:`probes.models` with it, never imports :mod:`probes.organism`, which itself imports
:mod:`probes.models`::

    >>> family_names()
    ['organism']
    >>> register_family("toy", lambda: {"base": "ckpt/base", "sft": "ckpt/sft"})  # doctest: +SKIP
    >>> load_family("toy")                                                         # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Callable, Mapping
from typing import Any

from probes.errors import FamilyError

__all__ = ["FamilyFactory", "register_family", "named_family", "family_names", "is_family_name"]

#: A factory returns what ``load_family`` accepts: a family file or folder, or a mapping.
FamilyFactory = Callable[[], "str | os.PathLike[str] | Mapping[str, Any]"]

#: name -> factory, or ``"module:function"`` naming one (resolved with importlib on first use).
#: ``organism``: the kit's model organism, seed 0, trained on first use or loaded from the cache.
_FAMILIES: dict[str, FamilyFactory | str] = {"organism": "probes.organism.train:organism_family"}


def register_family(name: str, factory: FamilyFactory | str, *, replace: bool = False) -> None:
    """Register ``factory`` (a callable or ``"module:function"``) under ``name``.

    A name already registered to another factory is an error unless ``replace=True``.
    """
    if not isinstance(name, str) or not name.strip():
        raise FamilyError(f"A family name must be a non-empty string, got {name!r}.")
    if isinstance(factory, str):
        _split_target(factory)  # fails now, not when the name is first asked for
    elif not callable(factory):
        raise FamilyError(
            f"The factory of family {name!r} must be a callable returning a family spec, or a "
            f"'module:function' string, got {type(factory).__name__}."
        )
    old = _FAMILIES.get(name)
    if old is not None and old is not factory and not replace:
        raise FamilyError(
            f"Family name {name!r} is already registered (to {old!r}). Choose another name, or pass "
            "replace=True to replace it."
        )
    _FAMILIES[name] = factory


def family_names() -> list[str]:
    """The registered names, sorted."""
    return sorted(_FAMILIES)


def is_family_name(spec: object) -> bool:
    """True when ``spec`` is a registered family name."""
    return isinstance(spec, str) and spec in _FAMILIES


def named_family(name: str) -> str | os.PathLike[str] | Mapping[str, Any]:
    """Run the factory registered under ``name`` and return the family spec it gives."""
    if name not in _FAMILIES:
        close = difflib.get_close_matches(name, list(_FAMILIES), n=3)
        hint = f" Did you mean {close}?" if close else ""
        raise FamilyError(
            f"No family is registered under the name {name!r}. Registered: {family_names()}.{hint} "
            "Register one with probes.models.registry.register_family(name, factory)."
        )
    factory = _FAMILIES[name]
    if isinstance(factory, str):
        factory = _resolve(factory)
    return factory()


def _split_target(target: str) -> tuple[str, str]:
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise FamilyError(
            f"Factory {target!r} is not of the form 'module:function' (e.g. "
            "'probes.organism.train:organism_family')."
        )
    return module, attr


def _resolve(target: str) -> FamilyFactory:
    module, attr = _split_target(target)
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise FamilyError(f"Cannot import the family factory {target!r}: {err}.") from err
    if not callable(fn):
        raise FamilyError(f"Family factory {target!r} is not callable ({type(fn).__name__}).")
    return fn  # type: ignore[no-any-return]
