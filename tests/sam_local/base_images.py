"""The python3.13 Lambda base images SAM runs functions on, built here (no registry to pull them from).

`public.ecr.aws/lambda/python:3.13-<arch>` is what SAM builds its function images FROM; `sam local ...
--skip-pull-image` then uses the local one. Each is Debian trixie (debootstrap from the Debian mirror:
its python3 is 3.13) plus runtime/requirements.txt installed for the image's architecture by this
machine's pip, compiled to bytecode like the layer (tools.bytecode), and runtime/bootstrap.

Built once per machine and inputs: the image carries a label with the hash of what it was built from,
and the root filesystem tarball stays in the state directory, so a second run reuses both.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from docker_engine import Docker

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_FILES = Path(__file__).resolve().parent / "runtime"
SUITE = "trixie"
MIRROR = "http://deb.debian.org/debian"
LABEL = "org.hangar.sam-local.inputs"
RECIPE = 1  # raise when build_root_filesystem changes what it makes: images and tarballs are rebuilt
# Nothing of these is read at run time: documentation, translations, the package lists and downloads.
TRIMMED = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "var/lib/apt/lists")


@dataclass(frozen=True)
class Architecture:
    lambda_name: str  # template.yaml's Architectures, SAM's image tag suffix
    debian: str
    platform: str  # docker's
    wheel_platforms: tuple[str, ...]  # pip --platform, as Lambda's runtime accepts (glibc 2.17+)


ARCHITECTURES = {
    "x86_64": Architecture("x86_64", "amd64", "linux/amd64", ("manylinux2014_x86_64", "manylinux_2_28_x86_64")),
    "arm64": Architecture("arm64", "arm64", "linux/arm64", ("manylinux2014_aarch64", "manylinux_2_28_aarch64")),
}


def image_name(arch: Architecture) -> str:
    return f"public.ecr.aws/lambda/python:3.13-{arch.lambda_name}"


def inputs_key(arch: Architecture) -> str:
    """What an image is built from: the suite, the architecture, runtime/ and how (RECIPE)."""
    digest = hashlib.sha256(f"{RECIPE} {SUITE} {MIRROR} {arch}".encode())
    for path in sorted(RUNTIME_FILES.iterdir()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:20]


def _run(command: list[str], **kwargs: object) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        output = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        raise RuntimeError(f"{' '.join(command[:4])} ... failed ({result.returncode}):\n{output}")


def build_root_filesystem(arch: Architecture, tarball: Path) -> None:
    """debootstrap, the runtime's packages (with bytecode) and its bootstrap, as one tarball."""
    tree = Path(tempfile.mkdtemp(prefix=f"rootfs-{arch.lambda_name}-", dir=tarball.parent))
    try:
        # Foreign architectures run their second stage through qemu-user-static (binfmt_misc).
        debootstrap = ["debootstrap", f"--arch={arch.debian}", "--variant=minbase", "--include=python3"]
        _run([*debootstrap, SUITE, str(tree), MIRROR])
        runtime = tree / "var" / "runtime"
        platforms = [option for platform in arch.wheel_platforms for option in ("--platform", platform)]
        _run(
            [
                sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
                "--target", str(runtime), "--only-binary=:all:", *platforms,
                "--python-version", "3.13", "--implementation", "cp", "--abi", "cp313",
                "-r", str(RUNTIME_FILES / "requirements.txt"),
            ]
        )  # fmt: skip
        # The runtime's own bytecode, compiled as `make build` compiles the layer (Lambda ships it compiled).
        _run(["python3.13", "-m", "tools.bytecode", str(runtime)], cwd=ROOT)
        shutil.copy2(RUNTIME_FILES / "bootstrap", runtime / "bootstrap")
        for directory in ("var/task", "opt"):
            (tree / directory).mkdir(parents=True, exist_ok=True)
        for trimmed in TRIMMED:
            shutil.rmtree(tree / trimmed, ignore_errors=True)
        for package in (tree / "var" / "cache" / "apt" / "archives").glob("*.deb"):
            package.unlink()
        partial = tarball.with_suffix(".partial")
        _run(["tar", "--numeric-owner", "-C", str(tree), "-cf", str(partial), "."])
        partial.rename(tarball)
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def ensure_base_image(docker: Docker, lambda_arch: str, state_dir: Path) -> str:
    """The base image of `lambda_arch`, built unless an image of the same inputs is there; its name."""
    arch = ARCHITECTURES[lambda_arch]
    name, key = image_name(arch), inputs_key(arch)
    if docker.image_label(name, LABEL) == key:
        print(f"sam-local: base image {name} is current ({key})", flush=True)
        return name
    started = time.monotonic()
    state_dir.mkdir(parents=True, exist_ok=True)
    tarball = state_dir / f"rootfs-{arch.lambda_name}-{key}.tar"
    if not tarball.exists():
        for stale in state_dir.glob(f"rootfs-{arch.lambda_name}-*.tar"):
            stale.unlink()
        build_root_filesystem(arch, tarball)
    with tempfile.TemporaryDirectory(prefix="base-image-", dir=state_dir) as context:
        shutil.copy2(RUNTIME_FILES / "Dockerfile", Path(context) / "Dockerfile")
        (Path(context) / "rootfs.tar").hardlink_to(tarball)
        docker.run("build", "--platform", arch.platform, "--label", f"{LABEL}={key}", "--tag", name, context)
    print(f"sam-local: built base image {name} in {time.monotonic() - started:.0f} s", flush=True)
    return name
