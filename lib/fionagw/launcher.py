"""Start a FIONA program from bin/ with nothing but python3 (standard library only).

Every file in bin/ calls :func:`main` with its program name. On first use this
creates the checkout's own virtualenv (``.venv``), installs the package into it,
and re-executes the program with the virtualenv's interpreter. That makes every
program work from cron's bare environment: no PATH, no activation, no install
step beyond a checkout.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

from fionagw.paths import CHECKOUT  # standard library only, like this module

ROOT = CHECKOUT
VENV = Path(os.environ.get("FIONA_VENV", ROOT / ".venv"))
STAMP = VENV / ".fionagw-installed"


def cli_module(program: str) -> str:
    """bin/ name -> module under fionagw.cli with main(argv) -> int ("processSingleFile" ->
    "process_single_file", "whatIsInIDS7" -> "what_is_in_ids7"), so a new program needs only
    its bin/ file and its module."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", program).lower()


def _install_fingerprint(extras: str) -> str:
    """Changes whenever the declared dependencies change, so upgrades reinstall."""
    digest = hashlib.sha256((ROOT / "setup.cfg").read_bytes())
    digest.update(extras.encode())
    return digest.hexdigest()


def _in_venv() -> bool:
    try:
        return Path(sys.prefix).resolve() == VENV.resolve()
    except OSError:
        return False


def ensure_venv(extras: str = "") -> Path:
    """Create or refresh the checkout's virtualenv; return its python."""
    python = VENV / "bin" / "python"
    wanted = _install_fingerprint(extras)
    if (
        python.exists()
        and STAMP.exists()
        and STAMP.read_text().strip()
        in (
            wanted,
            _install_fingerprint("test"),
        )
    ):
        return python
    print(f"fionagw: setting up {VENV} (first use; needs PyPI)", file=sys.stderr)
    if not python.exists():
        result = subprocess.run([sys.executable, "-m", "venv", str(VENV)])
        if result.returncode != 0:
            _venv_help()
    target = f"{ROOT}[{extras}]" if extras else str(ROOT)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if subprocess.run([*pip, "-e", target]).returncode != 0:
        sys.exit("fionagw: installing the Python dependencies failed (see pip's message above)")
    STAMP.write_text(wanted + "\n")
    return python


def _venv_help() -> None:
    if os.geteuid() == 0:
        # Debian ships venv's pip bootstrap in a separate package.
        rc = subprocess.run(["apt-get", "install", "-y", "-q", "python3-venv"]).returncode
        if rc == 0 and subprocess.run([sys.executable, "-m", "venv", str(VENV)]).returncode == 0:
            return
    sys.exit(
        "fionagw: cannot create a virtualenv with "
        f"{sys.executable}; on Debian run: sudo apt-get install python3-venv"
    )


def main(program: str) -> None:
    if os.environ.get("FIONA_NO_VENV") != "1" and not _in_venv():
        python = ensure_venv()
        os.execv(str(python), [str(python), sys.argv[0], *sys.argv[1:]])
    sys.path.insert(0, str(ROOT / "lib"))
    # Every program applies the permission policy's umask before it writes anything.
    importlib.import_module("fionagw.ops.perms").set_umask()
    # An exception nobody catches is one line without its message (which may quote data),
    # never a traceback; setup_logging adds the program's log (standard library only, too).
    importlib.import_module("fionagw.ops.log_filter").install_excepthooks(program=program)
    module = importlib.import_module(f"fionagw.cli.{cli_module(program)}")
    sys.exit(module.main(sys.argv[1:]))
