"""The one check for unknown keys in a user's settings (a family file, a task table, a battery
or sweep table): every unknown key is named with the valid ones and the close matches.

    >>> check_keys({"path": "x", "revison": "main"}, {"path", "revision", "task"}, "variant 'base'")
    Traceback (most recent call last):
    ...
    probes.errors.ElicitError: Unknown key(s) ['revison'] in variant 'base'. Valid keys: ['path', 'revision', 'task']. Did you mean 'revision' for 'revison'? Remove or rename the unknown key(s).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from probes.errors import ElicitError

__all__ = ["check_keys"]


def check_keys(
    mapping: Iterable[str],
    allowed: Iterable[str],
    where: str,
    *,
    error: type[ElicitError] = ElicitError,
    what: str = "key",
) -> None:
    """Raise ``error`` naming every key of ``mapping`` not in ``allowed``, with suggestions.

    Args:
        mapping: the user's table (its keys are checked) or any iterable of keys.
        allowed: the valid keys.
        where: where the table came from, for the message (e.g. ``"variant 'sft' of fam.toml"``).
        error: the kit error raised (a subclass of :class:`probes.errors.ElicitError`).
        what: the word for a key in the message (``"key"``, ``"setting"``).
    """
    valid = sorted(set(allowed))
    unknown = sorted(set(mapping) - set(valid))
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, valid, n=1)
        if close:
            hints.append(f"{close[0]!r} for {key!r}")
    hint = f" Did you mean {', '.join(hints)}?" if hints else ""
    raise error(
        f"Unknown {what}(s) {unknown} in {where}. Valid {what}s: {valid}.{hint} "
        f"Remove or rename the unknown {what}(s)."
    )
