"""Modelplane's gRPC APIs: generated stubs (``gen``) and hand-written conversions.

``gen`` is written only by ``tools/protogen/generate.py`` from ``proto/`` and is
checked fresh in CI; never edit it. Conversions between the stubs and the library's
own values live beside it (``placement``), so services and the CLI share them.
"""
