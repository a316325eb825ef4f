"""Paper figures from saved result tables, one module per concept (``sweep``, ``verdicts``,
``representation``, ``dictionaries``, ``weights``, ``decoding``, ``quality``), one style
(``style``) and one renderer (``render``). Importing them never picks a matplotlib backend."""
