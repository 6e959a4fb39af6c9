"""Every function of the DRA selector environment, by name.

Joins the core library (``functions``), the strings, lists/sets, IP/CIDR,
URL and optional libraries.  ``FUNCTIONS`` is what the checker resolves calls
against; a dotted name (``sets.contains``) is a namespaced global function.
"""

from __future__ import annotations

from modelplane.cel.functions import CORE
from modelplane.cel.lists_ext import LISTS_AND_SETS
from modelplane.cel.net_ext import NETWORK
from modelplane.cel.optional import OPTIONALS
from modelplane.cel.overloads import Function, merge
from modelplane.cel.strings_ext import STRINGS
from modelplane.cel.url_ext import URLS

__all__ = ["FUNCTIONS"]

FUNCTIONS: dict[str, Function] = merge(
    (*CORE, *STRINGS, *LISTS_AND_SETS, *NETWORK, *URLS, *OPTIONALS)
)
