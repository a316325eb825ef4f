"""``python -m steering.cli`` runs the ``elicit`` command (the same as the console script)."""

from steering.cli.entry import main

if __name__ == "__main__":
    main()
