"""Container images for the Workflows tests, built here: ``FROM scratch`` with Debian's static
busybox and the files a step needs (scripts), so nothing is pulled from a registry.

Podman on the test machines needs the ``runc`` runtime and no default ulimits (crun refuses
the kernel's hybrid cgroups): :func:`containers_conf` writes that containers.conf, and
:func:`podman_env` gives the environment (``CONTAINERS_CONF``) for podman and our programs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

BUSYBOX = Path("/bin/busybox")


def containers_conf(directory: Path) -> Path:
    conf = directory / "containers.conf"
    conf.write_text('[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n')
    return conf


def podman_env(conf: Path) -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def build_image(directory: Path, tag: str, files: dict[str, str], env: dict[str, str]) -> str:
    """Build ``tag`` from scratch: busybox (as /bin/sh and the applets a script uses) plus
    ``files`` (path in the image -> text, made executable)."""
    ctx = directory / f"ctx-{tag.replace('/', '_').replace(':', '_')}"
    (ctx / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, ctx / "bin" / "busybox")
    for applet in (
        "sh",
        "cat",
        "echo",
        "head",
        "tr",
        "sleep",
        "ls",
        "mkdir",
        "cp",
        "find",
        "touch",
        "wc",
    ):
        (ctx / "bin" / applet).symlink_to("busybox")
    for name, text in files.items():
        path = ctx / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755)
    (ctx / "Containerfile").write_text("FROM scratch\nCOPY . /\nENV PATH=/bin\n")
    r = subprocess.run(
        ["podman", "build", "-q", "-t", tag, str(ctx)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, f"podman build {tag}: {r.stderr}"
    return tag
