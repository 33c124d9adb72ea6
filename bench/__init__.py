"""`make bench`: figures for the order path, printed, never asserted (see bench/__main__.py)."""
