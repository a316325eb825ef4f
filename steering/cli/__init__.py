"""The ``elicit`` command line: one module per command group, assembled in :mod:`steering.cli.entry`.

``collect`` (:mod:`~steering.cli.collect`), ``organism train|eval`` (:mod:`~steering.cli.organism`),
``sae train`` / ``crosscoder train`` (:mod:`~steering.cli.dictionaries`), ``sweep run|merge``
(:mod:`~steering.cli.sweep`), ``weights`` (:mod:`~steering.cli.weights`), ``report`` / ``run`` /
``figures`` (:mod:`~steering.cli.report`). The console script is ``steering.cli:main``.
"""

from steering.cli.entry import app, main

__all__ = ["app", "main"]
