"""Command-line entry points: `tandem run` (and `python -m tandem`)."""
