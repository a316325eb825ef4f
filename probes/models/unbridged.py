"""Generation on a TransformerBridge's own ``transformers`` modules, with the Bridge's hooks kept.

A TransformerBridge runs every forward through its wrapper components: each attention layer
recomputes its scores and pattern itself (so ``hook_attn_scores`` / ``hook_pattern`` exist), and
every sub-layer passes its tensors through hook points. When the only hooks in use sit on the
residual stream between blocks, none of that is needed: :func:`unbridged` puts the wrapped
``transformers`` modules back in place for the duration of a block and routes the residual hook
points' tensors through the *same* ``HookPoint`` modules (their registered hook functions run
exactly as they would in the Bridge, name and all). Generation then runs through
``transformers``' own ``generate`` and attention code.

    with unbridged(bridge) as hf:       # hf: the transformers model, or None (use the Bridge)
        if hf is not None:
            out = hf.generate(input_ids, attention_mask=mask, max_new_tokens=8)

Hook points with an equivalent on the ``transformers`` modules (``hook_in`` / ``hook_out``):

- ``embed.hook_in``: the input ids, before the embedding;
- ``blocks.L.hook_in`` / ``blocks.L.hook_out`` (``hook_resid_pre`` / ``hook_resid_post``): the
  hidden states into and out of decoder layer ``L``;
- ``unembed.hook_out``: the logits.

If any other hook point of the Bridge has a hook (an attention pattern, an MLP output, a backward
hook, ...), the context yields ``None`` and the caller keeps the Bridge's own path, so the fast
path never drops a hook. The attention implementation is the model's own (the Bridge loads
``eager``), so no kernel changes behind the caller's back; the tokens are tested equal to the
Bridge's ``generate``, steered and not, on Llama, Qwen2 and OLMo 2 stand-ins and the organism.

The modules are swapped back in ``finally`` (also on error); the weights are the same tensors
throughout (nothing is copied or moved). Inside the block the Bridge object itself must not be
called: its blocks list holds the ``transformers`` layers then.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

__all__ = ["unbridged", "residual_hook_points"]


def residual_hook_points(bridge: Any) -> dict[int, tuple[torch.nn.Module, torch.nn.Module, str]] | None:
    """``id(HookPoint) -> (hook point, original module, where)`` for the hook points with an
    equivalent on the ``transformers`` modules (``where``: ``"input"`` of the module's first
    argument or its ``"output"``); ``None`` when the Bridge lacks the expected layout."""
    try:
        embed, unembed, blocks = bridge.embed, bridge.unembed, list(bridge.blocks)
    except AttributeError:
        return None
    sites: list[tuple[Any, Any, str]] = [(embed.hook_in, embed.original_component, "input")]
    for block in blocks:
        sites += [(block.hook_in, block.original_component, "input")]
        sites += [(block.hook_out, block.original_component, "output")]
    sites += [(unembed.hook_out, unembed.original_component, "output")]
    if any(mod is None for _, mod, _ in sites):
        return None
    return {id(hp): (hp, mod, where) for hp, mod, where in sites}


def _hooked_points(bridge: Any) -> list[torch.nn.Module]:
    """The Bridge's hook points that have a forward or backward hook registered."""
    from transformer_lens.hook_points import HookPoint

    return [
        m
        for m in bridge.modules()
        if isinstance(m, HookPoint) and (m._forward_hooks or m._backward_hooks or m._forward_pre_hooks)
    ]


@contextmanager
def unbridged(bridge: Any) -> Iterator[Any]:
    """The Bridge's ``transformers`` model with its original modules in place and the residual
    hook points attached as torch hooks, for the block; ``None`` (nothing changed) when a hook
    is active that has no ``transformers`` equivalent, or the model is not a Bridge."""
    from transformer_lens.model_bridge.generalized_components.base import GeneralizedComponent

    hf = getattr(bridge, "__dict__", {}).get("original_model")
    points = residual_hook_points(bridge) if hf is not None else None
    hooked = _hooked_points(bridge) if points is not None else []
    if hf is None or points is None or any(id(hp) not in points for hp in hooked):
        yield None
        return
    swapped: list[tuple[torch.nn.Module, str, torch.nn.Module]] = []
    handles: list[Any] = []
    try:
        _restore(hf, GeneralizedComponent, swapped)  # (the blocks' hook points leave the tree here)
        for hp in hooked:
            _, mod, where = points[id(hp)]
            handles.append(_attach(hp, mod, where))
        yield hf
    finally:
        for h in handles:
            h.remove()
        for parent, name, child in reversed(swapped):
            parent._modules[name] = child


def _restore(module: torch.nn.Module, component: type, swapped: list[Any]) -> None:
    """Put each wrapped module back under its parent (recursively), recording what was there."""
    for name, child in list(module._modules.items()):
        if child is None:
            continue
        if isinstance(child, component):
            original = child._modules.get("_original_component")
            if original is None:
                continue
            swapped.append((module, name, child))
            module._modules[name] = original
            child = original
        _restore(child, component, swapped)


def _attach(hp: torch.nn.Module, mod: torch.nn.Module, where: str) -> Any:
    """A torch hook on ``mod`` passing its first input (``"input"``) or its output through ``hp``."""
    if where == "input":

        def pre(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            if args:
                return (hp(args[0]), *args[1:]), kwargs
            key = "input_ids" if "input_ids" in kwargs else "hidden_states"
            return args, {**kwargs, key: hp(kwargs[key])}

        return mod.register_forward_pre_hook(pre, with_kwargs=True)

    def post(module: torch.nn.Module, args: Any, output: Any) -> Any:
        if isinstance(output, torch.Tensor):
            return hp(output)
        if isinstance(output, tuple):
            return (hp(output[0]), *output[1:])
        raise TypeError(
            f"unbridged: {type(module).__name__} returned a {type(output).__name__}, not a tensor or tuple"
        )

    return mod.register_forward_hook(post)
