"""Hook sites: typed (layer, site) values resolved to TransformerLens hook names in one place.

    >>> HookSite(2, "resid_post").name
    'blocks.2.hook_resid_post'
    >>> parse_hooks("resid_post:0-2")
    (HookSite(layer=0, site='resid_post'), HookSite(layer=1, site='resid_post'), HookSite(layer=2, site='resid_post'))
    >>> HookSite.parse("blocks.1.hook_mlp_out")
    HookSite(layer=1, site='mlp_out')

A typo fails with close-match suggestions (:func:`validate_hooks`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from probes.errors import HookError

__all__ = ["SITES", "HookSite", "parse_hooks", "validate_hooks"]

#: Site name -> TransformerLens hook template.
SITES: dict[str, str] = {
    "resid_pre": "blocks.{layer}.hook_resid_pre",
    "resid_mid": "blocks.{layer}.hook_resid_mid",
    "resid_post": "blocks.{layer}.hook_resid_post",
    "attn_out": "blocks.{layer}.hook_attn_out",
    "mlp_out": "blocks.{layer}.hook_mlp_out",
}


@dataclass(frozen=True, order=True)
class HookSite:
    """A residual-stream or block-output site at one layer."""

    layer: int
    site: str = "resid_post"

    def __post_init__(self) -> None:
        if self.site not in SITES:
            close = difflib.get_close_matches(self.site, list(SITES), n=3)
            hint = f" Did you mean {close}?" if close else ""
            raise HookError(f"Unknown hook site {self.site!r}. Valid sites: {list(SITES)}.{hint}")
        if self.layer < 0:
            raise HookError(f"Layer must be >= 0, got {self.layer} (site {self.site!r}).")

    @property
    def name(self) -> str:
        """The TransformerLens hook name."""
        return SITES[self.site].format(layer=self.layer)

    @property
    def key(self) -> str:
        """Short stable key used in files and tables, e.g. ``resid_post.2``."""
        return f"{self.site}.{self.layer}"

    @classmethod
    def parse(cls, spec: str | HookSite) -> HookSite:
        """Parse ``resid_post.2``, ``2.resid_post`` or ``blocks.2.hook_resid_post``."""
        if isinstance(spec, HookSite):
            return spec
        s = spec.strip()
        if s.startswith("blocks."):
            parts = s.split(".")
            if len(parts) == 3 and parts[1].isdigit() and parts[2].startswith("hook_"):
                return cls(int(parts[1]), parts[2][5:])
        else:
            a, _, b = s.partition(".")
            if b.isdigit():
                return cls(int(b), a)
            if a.isdigit() and b:
                return cls(int(a), b)
        raise HookError(
            f"Cannot parse hook site {spec!r}. Write SITE.LAYER (e.g. 'resid_post.2'), a TransformerLens "
            f"name (e.g. 'blocks.2.hook_resid_post') or SITE:LAYERS (e.g. 'resid_post:0-2'). Sites: {list(SITES)}."
        )


def _layers(spec: str, total: int | None) -> list[int]:
    if spec == "all":
        if total is None:
            raise HookError("'all' layers needs the model's layer count; pass n_layers=.")
        return list(range(total))
    out: list[int] = []
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            out.extend(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    return out


def parse_hooks(
    spec: str | HookSite | Iterable[str | HookSite], n_layers: int | None = None
) -> tuple[HookSite, ...]:
    """Parse hook sites: a site, a list, ``SITE:0-2``, ``SITE:all`` or space/comma-separated forms."""
    if isinstance(spec, HookSite):
        return (spec,)
    if isinstance(spec, str):
        items: list[str] = [
            p for chunk in spec.split() for p in ([chunk] if ":" in chunk else chunk.split(","))
        ]
    else:
        items = list(spec)  # type: ignore[arg-type]
    out: list[HookSite] = []
    for item in items:
        if isinstance(item, HookSite):
            out.append(item)
        elif ":" in item:
            site, _, layers = item.partition(":")
            try:
                out.extend(HookSite(layer, site) for layer in _layers(layers, n_layers))
            except ValueError:
                raise HookError(
                    f"Cannot parse layers {layers!r} in {item!r}; write e.g. '0-2', '1,3' or 'all'."
                ) from None
        elif item:
            out.append(HookSite.parse(item))
    if not out:
        raise HookError(f"No hook sites in {spec!r}. Example: 'resid_post:0-2'.")
    return tuple(dict.fromkeys(out))


def validate_hooks(model: Any, sites: Sequence[HookSite | str]) -> list[str]:
    """Resolve sites to hook names present on ``model``; fail with suggestions otherwise."""
    names: list[str] = []
    available = model.hook_dict
    for site in sites:
        name = site.name if isinstance(site, HookSite) else str(site)
        if name not in available:
            close = difflib.get_close_matches(name, list(available), n=3, cutoff=0.6)
            layer_hint = ""
            n_layers = int(model.cfg.n_layers)
            if isinstance(site, HookSite) and site.layer >= n_layers:
                layer_hint = f" The model has {n_layers} layers (0..{n_layers - 1})."
            raise HookError(
                f"Hook {name!r} does not exist on this model.{layer_hint}"
                + (f" Close matches: {close}." if close else "")
                + " Choose a site of probes.models.hooks.SITES at a layer the model has."
            )
        names.append(name)
    return names
