"""Generator of the modelplane.ai API: CRD YAML under crds/ and lib/modelplane/api/names.py.

Guarantees: both outputs are pure functions of ``tools.apigen.api``; running the
generator twice writes identical bytes.
"""
