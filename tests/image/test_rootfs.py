"""Every service starts from the image's unpacked root filesystem (chroot, as its user)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.image.conftest import Built

pytestmark = pytest.mark.slow

SERVICES = (
    "modelplane",
    "modelplane-fleet-scheduler",
    "modelplane-cluster-provisioner",
    "modelplane-endpoint-manager",
    "modelplane-gateway-config",
    "modelplane-cache-hydrator",
    "modelplane-hydrate",  # the cache volume's hydration job
    "modelplane-pd-router",  # a PrefillDecode replica's router
    "modelplane-activator",  # holds requests of ModelServices at zero
    "modelplane-scheduler-extender",  # the scheduler extension of an inference cluster
)


def _run_in(rootfs: Path, image: Built, *command: str) -> subprocess.CompletedProcess[str]:
    config = image.config["config"]
    assert isinstance(config, dict)
    env = dict(line.split("=", 1) for line in config["Env"])  # the image's, for the chroot
    chroot = shutil.which("chroot")
    assert chroot, "chroot (coreutils) is not on PATH"
    return subprocess.run(
        [chroot, f"--userspec={config['User']}", str(rootfs), *command],
        env=env, cwd=rootfs, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("service", SERVICES)
def test_the_service_starts(rootfs: Path, image: Built, service: str) -> None:
    done = _run_in(rootfs, image, service, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {service}"), done.stdout


def test_python_imports_from_the_image_as_the_non_root_user(rootfs: Path, image: Built) -> None:
    probe = (
        "import json, os, pwd, grpc, modelplane, fleet_scheduler.__main__; "
        "print(json.dumps([modelplane.__file__, modelplane.__cached__, grpc.__file__, "
        "pwd.getpwuid(os.getuid()).pw_name, os.getcwd()]))"
    )
    done = _run_in(rootfs, image, "python3", "-c", probe)
    assert done.returncode == 0, done.stderr
    module, cached, grpc, user, _ = json.loads(done.stdout)
    assert module == "/usr/local/lib/python3.11/dist-packages/modelplane/__init__.py"
    assert grpc == "/usr/lib/python3/dist-packages/grpc/__init__.py"
    assert (rootfs / cached.lstrip("/")).is_file(), "the bytecode ships in the image"
    assert user == "nonroot"
