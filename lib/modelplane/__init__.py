"""Modelplane's shared library.

API types, CEL, quantities and versions, conditions, naming, the scheduler core
and gRPC plumbing: everything more than one service (or the CLI) needs.
"""
