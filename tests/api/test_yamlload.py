"""The fast YAML document loader gives exactly what `yaml.safe_load` gives, or its error."""

from __future__ import annotations

import pytest
import yaml
from modelplane.api.yamlload import load_document

CASES = {
    "an empty document is None": "",
    "a comment only is None": "# nothing here\n",
    "plain maps, lists and strings": "a: b\nc: [d, e]\nf: {g: h}\n",
    "YAML 1.1 scalars resolve as the safe loader resolves them": (
        "i: 12\no: 0o14\nx: 0x1f\nf: 1.5\ne: 1e3\ninf: .inf\nb: yes\nn: ~\nnull2: null\n"
        "off: off\nsexagesimal: 1:30\nempty:\nquoted: '12'\ndouble: \"true\"\n"
    ),
    "timestamps become datetimes": "created: 2026-01-01T00:00:00Z\nday: 2026-01-02\n",
    "non-string keys": "1: one\ntrue: yes\n~: nothing\n",
    "anchors and aliases copy the value": "a: &x {k: [1, 2]}\nb: *x\n",
    "merge keys": "base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n",
    "explicit tags": "s: !!str 12\ni: !!int '7'\nset: !!set {a, b}\nbin: !!binary aGk=\n",
    "an ordered map tag": "o: !!omap [a: 1, b: 2]\n",
    "a later duplicate key wins": "a: 1\na: 2\n",
    "block scalars": "lit: |\n  one\n  two\nfold: >\n  one\n  two\n",
    "a top-level list": "- a\n- 1\n",
    "a top-level scalar": "just a string\n",
}


@pytest.mark.parametrize("text", CASES.values(), ids=list(CASES))
def test_the_same_value_as_safe_load(text: str) -> None:
    expected = yaml.safe_load(text)
    assert load_document(text) == expected
    assert load_document(text, {}) == expected


MALFORMED = {
    "an unclosed flow sequence": "kind: [unclosed\n",
    "a bad indentation": "a:\n  b: 1\n c: 2\n",
    "an unknown tag": "a: !nope 1\n",
    "a sequence used as a key": "? [a, b]\n: c\n",
}
# The manifests loader has always used libyaml's safe loader when PyYAML has it, whose
# messages differ a little from the pure-Python one's.
SAFE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@pytest.mark.parametrize("text", MALFORMED.values(), ids=list(MALFORMED))
def test_malformed_yaml_raises_the_safe_loaders_error(text: str) -> None:
    with pytest.raises(yaml.YAMLError) as expected:
        yaml.load(text, Loader=SAFE)
    with pytest.raises(yaml.YAMLError) as got:
        load_document(text)
    assert str(got.value) == str(expected.value)
