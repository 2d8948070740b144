"""The container images: Dockerfile shape, `make images`, and the lock they build from.

No Docker engine runs here, so `make images` is driven with a stand-in `docker`
that records what it was asked to do.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "Dockerfile"
IMAGES_MK = ROOT / "deploy" / "images.mk"
SERVICES = ["auth", "subscriptions", "payments", "invoicing", "notifications", "gateway"]
DEV_ONLY = ("pytest", "ruff", "mypy", "helm-python-sdk", "kubernetes-validate")

needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def stages() -> dict[str, str]:
    """Dockerfile text per stage name."""
    parts = re.split(r"^FROM\s+\S+\s+AS\s+(\S+)\s*$", DOCKERFILE.read_text(), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_builder_installs_only_the_service_from_the_lock() -> None:
    builder = stages()["builder"]
    assert re.search(
        r"uv sync --frozen --no-dev --no-editable --package \"\$\{SERVICE\}\"", builder
    )
    assert "python:3.11-slim" in DOCKERFILE.read_text()


def test_runtime_stage_is_non_root_and_has_no_build_tools() -> None:
    runtime = stages()["runtime"]
    user = re.findall(r"^USER\s+(\S+)", runtime, flags=re.M)
    assert user and re.fullmatch(r"\d+:\d+", user[-1]) and not user[-1].startswith("0:")
    # Only the finished virtualenv crosses over; uv, pip installs and compilers stay behind.
    assert re.findall(r"^COPY\s.*", runtime, flags=re.M) == [
        "COPY --from=builder /opt/venv /opt/venv"
    ]
    assert not re.search(r"\b(pip install|uv |apt-get|gcc)\b", runtime)
    assert re.search(r'exec python -m \\"\$APP_MODULE\\"', runtime)
    assert "HOME=/tmp" in runtime and "PYTHONDONTWRITEBYTECODE=1" in runtime


@pytest.mark.parametrize("service", SERVICES)
def test_lock_resolves_each_image_without_dev_tools(service: str) -> None:
    # The exact resolution the Dockerfile's `uv sync --frozen --no-dev --package` installs.
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    out = subprocess.run(
        [uv, "export", "--frozen", "--no-dev", "--package", service, "--no-hashes"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "billing_kit" in out
    names = {line.split("==")[0].strip().lower() for line in out.splitlines() if "==" in line}
    assert not names & set(DEV_ONLY)


def fake_docker(tmp_path: Path, engine_up: bool) -> tuple[Path, Path]:
    log = tmp_path / "docker.log"
    script = tmp_path / "docker"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{log}"\n'
        f'if [ "$1" = info ]; then exit {0 if engine_up else 1}; fi\n'
        "exit 0\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script, log


def run_make(docker: Path | str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-f",
            str(IMAGES_MK),
            "images",
            f"DOCKER={docker}",
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@needs_make
def test_make_images_builds_every_service_tagged_with_app_version(tmp_path: Path) -> None:
    docker, log = fake_docker(tmp_path, engine_up=True)
    result = run_make(docker, "IMAGE_REPOSITORY_PREFIX=registry.example.com/cp")
    assert result.returncode == 0, result.stderr
    app_version = yaml.safe_load((ROOT / "deploy/helm/customer-portal/Chart.yaml").read_text())[
        "appVersion"
    ]
    builds = [line for line in log.read_text().splitlines() if line.startswith("build ")]
    assert builds == [
        f"build --build-arg SERVICE={svc} -t registry.example.com/cp/{svc}:{app_version} ."
        for svc in SERVICES
    ]


@pytest.mark.parametrize("engine", ["missing-binary", "engine-down"])
@needs_make
def test_make_images_without_docker_says_so_in_one_line(tmp_path: Path, engine: str) -> None:
    if engine == "missing-binary":
        docker: Path | str = tmp_path / "no-such-docker"
        log = None
    else:
        docker, log = fake_docker(tmp_path, engine_up=False)
    result = run_make(docker)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and "no Docker engine" in lines[0]
    if log is not None:
        assert "build" not in log.read_text()
