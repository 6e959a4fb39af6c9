"""The `modelplane` command line."""

TOUR_STATE = "/tmp/modelplane-tour"
"""Where `modelplane up` keeps its local fleet's state unless told otherwise."""
