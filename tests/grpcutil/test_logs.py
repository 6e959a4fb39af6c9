"""JSON-lines logs with bound keys."""

from __future__ import annotations

import io
import json
import logging

from modelplane.logs import bind, configure


def test_a_record_is_one_json_line_with_bound_and_per_call_keys() -> None:
    stream = io.StringIO()
    configure(logging.INFO, stream)
    try:
        logger = bind(bind(logging.getLogger("t"), object="ml-team/chat"), cluster="east")
        logger.info("placed %d", 2, extra={"fields": {"cluster": "west", "n": 2}})
        logging.getLogger("t").debug("hidden")
    finally:
        configure(logging.WARNING)
    lines = stream.getvalue().splitlines()
    record = json.loads(lines[0])
    assert set(record) == {"time", "level", "logger", "message", "object", "cluster", "n"}
    assert {k: record[k] for k in ("level", "logger", "message", "object", "cluster", "n")} == {
        "level": "info",
        "logger": "t",
        "message": "placed 2",
        "object": "ml-team/chat",
        "cluster": "west",
        "n": 2,
    }
    assert len(lines) == 1


def test_exceptions_and_values_json_cannot_hold_are_still_logged() -> None:
    stream = io.StringIO()
    configure(logging.INFO, stream)
    try:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("t").exception("failed", extra={"fields": {"obj": object()}})
    finally:
        configure(logging.WARNING)
    record = json.loads(stream.getvalue())
    assert record["message"] == "failed"
    assert "RuntimeError: boom" in record["error"]
    assert record["obj"].startswith("<object object")
