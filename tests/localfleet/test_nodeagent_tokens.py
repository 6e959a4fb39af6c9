"""Projected service-account tokens: the TokenRequest kubelet sends and its refresh schedule."""

from __future__ import annotations

import datetime

import pytest
from modelplane_localfleet.nodeagent import tokens
from modelplane_localfleet.nodeagent.tokens import Token, TokenKey

ISSUED = datetime.datetime(2026, 12, 3, 12, 0, tzinfo=datetime.UTC)
POD = {"metadata": {"name": "api-0", "namespace": "ms", "uid": "u-1"}, "spec": {}}


def test_a_projection_without_audience_or_expiration_gets_the_api_server_defaults() -> None:
    assert tokens.key_of({"path": "token"}) == TokenKey("", 3600)
    assert tokens.key_of({"path": "t", "audience": "vault", "expirationSeconds": 600}) == TokenKey(
        "vault", 600
    )


def test_the_request_is_bound_to_the_pod_and_goes_to_its_service_account() -> None:
    assert tokens.request_path(POD) == "/api/v1/namespaces/ms/serviceaccounts/default/token"
    body = tokens.request_body(POD, TokenKey("vault", 600))
    assert body["kind"] == "TokenRequest"
    assert body["spec"] == {
        "audiences": ["vault"],
        "expirationSeconds": 600,
        "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "api-0", "uid": "u-1"},
    }


def test_a_token_is_renewed_at_80_percent_of_its_life() -> None:
    token = Token("t", ISSUED, ISSUED + datetime.timedelta(seconds=3600))
    assert token.refresh_at() == ISSUED + datetime.timedelta(seconds=2880)
    assert not token.due(ISSUED + datetime.timedelta(seconds=2879))
    assert token.due(ISSUED + datetime.timedelta(seconds=2880))


def test_a_long_lived_token_is_renewed_after_a_day() -> None:
    # The API server extends the 3607 s admission tokens to a year.
    token = Token("t", ISSUED, ISSUED + datetime.timedelta(days=365))
    assert token.refresh_at() == ISSUED + datetime.timedelta(hours=24)


def test_the_answer_gives_token_and_expiry_and_an_empty_answer_is_refused() -> None:
    answer = {"status": {"token": "eyJ", "expirationTimestamp": "2026-12-03T13:00:07Z"}}
    token = tokens.from_response(answer, ISSUED)
    assert token == Token(
        "eyJ", ISSUED, datetime.datetime(2026, 12, 3, 13, 0, 7, tzinfo=datetime.UTC)
    )
    with pytest.raises(ValueError, match=r"status\.token"):
        tokens.from_response({"status": {}}, ISSUED)
