"""The gRPC stub generator (see ``generate.py``)."""
