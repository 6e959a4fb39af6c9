"""The Containerfile describes the image `tools/image` builds: same user, folder,
environment, command, labels (those not given as build arguments), and layer trees."""

from __future__ import annotations

import json
import re
import shlex
import tomllib

from modelplane_imagebuild import build

from tests.image.conftest import ROOT


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (ROOT / "Containerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(" ", 1)[0], line.split(" ", 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    starts = [i for i, (word, _) in enumerate(instructions) if word == "FROM"]
    return instructions[starts[-1] :]


def test_the_final_stage_runs_like_the_built_image() -> None:
    stage = dict(_final_stage())
    assert stage["FROM"] == "scratch"
    assert stage["USER"] == "65532:65532"
    assert stage["WORKDIR"] == build.WORKING_DIR == "/home/nonroot"
    assert shlex.split(stage["ENV"]) == list(build.ENV)
    assert json.loads(stage["CMD"]) == list(build.CMD)


def test_the_final_stage_copies_the_three_trees_in_layer_order() -> None:
    copies = [argument for word, argument in _final_stage() if word == "COPY"]
    assert copies == [f"--from=trees /trees/{tree}/ /" for tree in build.TREES]


def test_the_labels_match_the_built_image() -> None:
    (labels,) = [argument for word, argument in _final_stage() if word == "LABEL"]
    written = dict(pair.split("=", 1) for pair in shlex.split(labels))
    with (ROOT / "pyproject.toml").open("rb") as file:
        pyproject = tomllib.load(file)
    expected = build.labels(ROOT, pyproject, 0)
    assert written.keys() == expected.keys()
    from_arguments = {"revision": "${SOURCE_REVISION}", "created": "${CREATED}"}
    for key, value in written.items():
        short = key.removeprefix("org.opencontainers.image.")
        assert value == from_arguments.get(short, expected[key]), key
