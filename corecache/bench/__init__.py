"""corecache's benchmark: ``python -m corecache.bench`` measures corecache
against functools, a plain dict and the peers that are installed, in one
process, as medians over repeats, and prints ratios.  See ``--help``."""
