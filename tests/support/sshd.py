"""OpenSSH's sshd (Debian's openssh-server) as the remote site of the sftp tests.

``Sshd(folder)`` makes its own host key, a user key (the user is the one running the tests),
authorized_keys, a known_hosts file that holds the host key for ``[127.0.0.1]:<port>``, and an
sshd_config listening on a free loopback port with SFTP only (internal-sftp). As root it is
chrooted to a root-owned folder under /run (sshd insists that every component of a chroot
path be root-owned and not writable by others, which /tmp is not) and the client's remote
folder is ``/upload``; as another user there is no chroot and the remote folder is an
absolute path in the test's temp folder. ``upload`` is that folder as seen by the tests.

``start()``/``kill()``: kill ends sshd and every session it forked (SIGKILL: the connection
drops mid-transfer, as a crash of the site would); start again uses the same port and host
key. (No pytest here: bench/send_sftp uses it too.)
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from support.site import free_port

SSHD = "/usr/sbin/sshd"


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fionagw-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (sshd forks one per connection, and those fork again)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class Sshd:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.user = getpass.getuser()
        self.host_key, self.user_key = folder / "host_key", folder / "user_key"
        _keygen(self.host_key)
        _keygen(self.user_key)
        self.authorized_keys = folder / "authorized_keys"
        shutil.copyfile(f"{self.user_key}.pub", self.authorized_keys)
        self.known_hosts = folder / "known_hosts"
        self.write_known_hosts(Path(f"{self.host_key}.pub"))
        self.chroot: Path | None = None
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation
            self.chroot = Path(tempfile.mkdtemp(prefix="fionagw-sshd-", dir="/run"))
            self.chroot.chmod(0o755)
            self.upload = self.chroot / "upload"
            self.remote_dir = "/upload"
        else:
            self.upload = folder / "upload"
            self.remote_dir = str(self.upload)
        self.upload.mkdir()
        self.log = folder / "sshd.log"
        self.config = folder / "sshd_config"
        lines = [
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {self.host_key}",
            f"PidFile {folder / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "PermitRootLogin prohibit-password",
            f"AllowUsers {self.user}",
            "Subsystem sftp internal-sftp",
            "ForceCommand internal-sftp",
            "LogLevel VERBOSE",
        ]
        if self.chroot is not None:
            lines.append(f"ChrootDirectory {self.chroot}")
        self.config.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def write_known_hosts(self, public_key: Path) -> None:
        kind, key = public_key.read_text().split()[:2]
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {kind} {key}\n")

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(self.config)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sshd did not listen within 10 s")

    def kill(self) -> None:
        """SIGKILL sshd and its sessions: connections drop in the middle of what they do."""
        if self.proc is None:
            return
        for pid in [*_descendants(self.proc.pid), self.proc.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.kill()
        if self.chroot is not None:
            shutil.rmtree(self.chroot, ignore_errors=True)

    def destination(self, **extra: object) -> dict[str, object]:
        """A config.json ``destinations`` entry for this server."""
        return {
            "type": "sftp",
            "host": "127.0.0.1",
            "port": self.port,
            "user": self.user,
            "remote_dir": self.remote_dir,
            "known_hosts": str(self.known_hosts),
            "key_file": str(self.user_key),
            **extra,
        }
