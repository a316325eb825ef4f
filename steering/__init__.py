"""steering: the DIRECTIONS. Fitting and applying steering vectors, sweeps, behavioural
elicitation, the select-vs-create battery and report, and the ``elicit`` CLI.

``steering`` imports ``probes``; ``probes`` never imports ``steering``.
"""

__all__: list[str] = []
