"""Trimming an upstream module's source before building it: KEDA without the scalers the fleet never uses."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from modelplane_localfleet import trim
from modelplane_localfleet.components import KEDA, KEDA_MODULE
from modelplane_localfleet.trim import SourceTrim, TrimError

BUILDER = """package scaling

func build(triggerType string) (Scaler, error) {
\t// TRIGGERS-START
\tswitch triggerType {
\tcase "aws":
\t\treturn newAws()
\tcase "echo":
\t\treturn newEcho()
\t}
\t// TRIGGERS-END
}
"""


def _source(root: Path) -> tuple[Path, SourceTrim]:
    """A tiny module laid out like KEDA's: scalers in one folder, one builder switch."""
    (root / "scalers").mkdir(parents=True)
    for name in ("aws_scaler.go", "echo_scaler.go", "scaler.go", "echo_scaler_test.go"):
        (root / "scalers" / name).write_text("package scalers\n")
    (root / "builder.go").write_text(BUILDER)
    spec = SourceTrim(
        folder="scalers",
        suffix="_scaler.go",
        keep=("echo_scaler.go",),
        switch_file="builder.go",
        switch_sha256=hashlib.sha256(BUILDER.encode()).hexdigest(),
        start="\t// TRIGGERS-START",
        end="\t// TRIGGERS-END",
        cases=(("echo", "return newEcho()"),),
        unknown='return nil, fmt.Errorf("no scaler found for type: %s", triggerType)',
        add=(("scalers/declarations.go", "package scalers\n\nconst kind = 1\n"),),
    )
    return root, spec


def test_a_trim_deletes_the_unkept_scalers_and_rewrites_the_switch(tmp_path: Path) -> None:
    root, spec = _source(tmp_path)
    dropped = trim.apply(root, spec, "example")
    assert dropped == ["aws_scaler.go"]
    assert sorted(p.name for p in (root / "scalers").iterdir()) == [
        "declarations.go",
        "echo_scaler.go",
        "echo_scaler_test.go",
        "scaler.go",
    ]
    assert (root / "builder.go").read_text() == (
        "package scaling\n\nfunc build(triggerType string) (Scaler, error) {\n"
        "\t// TRIGGERS-START\n"
        "\tswitch triggerType {\n"
        '\tcase "echo":\n'
        "\t\treturn newEcho()\n"
        "\tdefault:\n"
        '\t\treturn nil, fmt.Errorf("no scaler found for type: %s", triggerType)\n'
        "\t}\n"
        "\t// TRIGGERS-END\n"
        "}\n"
    )


def test_a_changed_upstream_file_stops_the_trim_naming_it(tmp_path: Path) -> None:
    root, spec = _source(tmp_path)
    (root / "builder.go").write_text(BUILDER.replace('"aws"', '"aws2"'))
    with pytest.raises(TrimError, match=r"example: builder.go has sha256 [0-9a-f]{64}, the trim"):
        trim.apply(root, spec, "example")
    assert (root / "scalers" / "aws_scaler.go").exists(), "nothing is deleted before the check"


def test_a_kept_file_missing_upstream_stops_the_trim_naming_it(tmp_path: Path) -> None:
    root, spec = _source(tmp_path)
    (root / "scalers" / "echo_scaler.go").unlink()
    with pytest.raises(TrimError, match=r"example: scalers lacks echo_scaler\.go"):
        trim.apply(root, spec, "example")


def test_a_trim_never_overwrites_an_upstream_file(tmp_path: Path) -> None:
    root, spec = _source(tmp_path)
    (root / "scalers" / "declarations.go").write_text("package scalers\n")
    with pytest.raises(TrimError, match=r"example: scalers/declarations\.go exists upstream"):
        trim.apply(root, spec, "example")


def test_prepare_builds_from_the_copy_with_the_wrappers_pins(tmp_path: Path) -> None:
    module, spec = _source(tmp_path / "module")
    module.chmod(0o555)  # as in Go's module cache
    wrapper = tmp_path / "wrapper"
    wrapper.mkdir()
    (wrapper / "go.mod").write_text("module example.local/w\n\nrequire example.com/up v1.0.0\n")
    (wrapper / "go.sum").write_text("example.com/up v1.0.0 h1:abc=\n")
    modfile = trim.prepare(module, "example.com/up", wrapper, spec, tmp_path / "work")
    source = tmp_path / "work" / "source"
    assert modfile.read_text() == (
        "module example.local/w\n\nrequire example.com/up v1.0.0\n\n"
        f"replace example.com/up => {source}\n"
    )
    assert (tmp_path / "work" / "go.sum").read_text() == "example.com/up v1.0.0 h1:abc=\n"
    assert not (source / "scalers" / "aws_scaler.go").exists()
    assert (module / "scalers" / "aws_scaler.go").exists(), "the module itself is untouched"


@pytest.mark.usefixtures("needs_go")
def test_the_pinned_keda_trims_and_drops_the_cloud_sdks_of_its_scalers(tmp_path: Path) -> None:
    assert KEDA.trim is not None
    env = {**os.environ, "GOWORK": "off", "CGO_ENABLED": "0"}
    downloaded = subprocess.run(
        ["go", "mod", "download", "-json", KEDA_MODULE],
        cwd=KEDA.module_dir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    module = Path(json.loads(downloaded.stdout)["Dir"])
    modfile = trim.prepare(module, KEDA_MODULE, KEDA.module_dir, KEDA.trim, tmp_path / "work")
    listed = subprocess.run(
        ["go", "list", f"-modfile={modfile}", "-deps", f"{KEDA_MODULE}/cmd/operator"],
        cwd=KEDA.module_dir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert f"{KEDA_MODULE}/pkg/scalers" in listed
    # client libraries of scalers the fleet does not use (SQS, Kafka, Postgres, MongoDB)
    for gone in (
        "github.com/aws/aws-sdk-go-v2/service/sqs",
        "github.com/IBM/sarama",
        "github.com/jackc/pgx/v5",
        "go.mongodb.org/mongo-driver/v2/mongo",
    ):
        assert gone not in listed
    builder = (tmp_path / "work/source/pkg/scaling/scalers_builder.go").read_text()
    assert (tmp_path / "work/source/pkg/scalers/trimmed_declarations.go").is_file()
    assert builder.count('case "') == 7  # the trigger switch: one case per kept trigger
    assert '\tcase "external-push":\n\t\treturn scalers.NewExternalPushScaler(config)' in builder
