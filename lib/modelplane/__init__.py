"""Modelplane shared library: API types, CEL, quantities, versions, conditions, naming, gRPC plumbing."""
