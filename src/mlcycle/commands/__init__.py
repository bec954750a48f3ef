"""The commands behind ``scripts/*.py`` and the ``mlcycle-*`` entry points."""
