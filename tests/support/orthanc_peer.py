"""Orthanc (the Debian package's /usr/sbin/Orthanc) as the research PACS of the send tests.

tests/conftest.py loads it as a plugin, so every test can ask for these fixtures:

orthanc_server   session-scoped: one Orthanc on free ports, its own storage and index in a temp
                 dir, AE title ORTHANC, REST on loopback only and so without authentication
                 (Orthanc 1.10 has no DICOM bind address: its DICOM port listens on all
                 interfaces), stores accepted from any AE (FIONA is a known modality too)
orthanc          function-scoped: the same Orthanc, running and emptied (every patient deleted)
orthanc_factory  session-scoped: make(aet, **orthanc_config) -> another started Orthanc with
                 other settings (TLS, accepted transfer syntaxes, ...), stopped at the end
tls_files        session-scoped: a test CA, a server certificate for 127.0.0.1 and a client
                 certificate (make_tls_files)

The handle (OrthancPeer) has ``.dicom_port``, ``.http_port``, ``.aet``, ``.url``,
``stop()``/``start()`` (a PACS that goes down and comes back keeps its data), and REST
helpers: studies(), series(), instances(), study_uids(), sop_uids(), instance_tags(id),
instance_metadata(id), instance_file(id), statistics(), find_text(text), clear(). Orthanc's log is a file; when a test that used a peer fails, the
part of the log written during the test is shown with the failure.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from support.site import free_port

ORTHANC = "/usr/sbin/Orthanc"


class OrthancPeer:
    """One Orthanc process and its REST API."""

    def __init__(self, directory: Path, aet: str = "ORTHANC", **config: Any) -> None:
        self.directory = directory
        self.aet = aet
        self.dicom_port = free_port()
        self.http_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.log_path = directory / "orthanc.log"
        self.config_path = directory / "orthanc.json"
        self.process: subprocess.Popen[bytes] | None = None
        self._log_mark = 0
        self._session = requests.Session()
        self.config: dict[str, Any] = {
            "Name": f"fionagw-test-{aet}",
            "StorageDirectory": str(directory / "storage"),
            "IndexDirectory": str(directory / "index"),
            "DicomAet": aet,
            "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": True,  # like a real PACS: a wrong called AE is rejected
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,  # REST on loopback only, so no authentication needed
            "AuthenticationEnabled": False,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowEcho": True,
            "DicomModalities": {"fiona": ["FIONA", "127.0.0.1", 104]},
            "Plugins": [],
            "LuaScripts": [],
            "SaveJobs": False,
            "SyncStorageArea": False,  # test speed; durability is the gateway's job, not the peer's
            "StableAge": 1,
            "HttpCompressionEnabled": False,
        }
        self.config.update(config)
        atexit.register(self.stop)  # also when pytest is interrupted before the fixture teardown

    # -- process --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 60.0) -> OrthancPeer:
        if self.running:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(self.config, indent=2))
        with open(self.log_path, "ab") as log:
            log.write(
                f"---- fionagw test: starting Orthanc at {time.strftime('%H:%M:%S')}\n".encode()
            )
            self.process = subprocess.Popen(
                [ORTHANC, "--no-jobs", str(self.config_path)],
                cwd=self.directory,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"Orthanc exited with {self.process.returncode} at start-up:\n{self.log_tail()}"
                )
            if self._answers():
                return self
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"Orthanc did not answer within {timeout} s:\n{self.log_tail()}")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.dicom_port), timeout=1):
                pass
            return self._session.get(self.url + "/system", timeout=2).ok
        except (OSError, requests.RequestException):
            return False

    def stop(self, timeout: float = 30.0) -> None:
        """Stop Orthanc (SIGTERM, then SIGKILL); its DICOM port refuses connections after."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None

    # -- log --------------------------------------------------------------------------------

    def mark_log(self) -> None:
        self._log_mark = self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_since_mark(self) -> str:
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(self._log_mark)
            return f.read().decode("utf-8", "replace")

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text("utf-8", "replace").splitlines()[-lines:])

    # -- REST -------------------------------------------------------------------------------

    def get(self, path: str, **kwargs: Any) -> Any:
        r = self._session.get(self.url + path, timeout=60, **kwargs)
        r.raise_for_status()
        return r.json()

    def get_bytes(self, path: str) -> bytes:
        r = self._session.get(self.url + path, timeout=60)
        r.raise_for_status()
        return r.content

    def studies(self) -> list[str]:
        return self.get("/studies")

    def series(self) -> list[str]:
        return self.get("/series")

    def instances(self) -> list[str]:
        return self.get("/instances")

    def study_uids(self) -> list[str]:
        return [
            self.get(f"/studies/{s}")["MainDicomTags"]["StudyInstanceUID"] for s in self.studies()
        ]

    def sop_uids(self) -> dict[str, str]:
        """SOP Instance UID -> Orthanc instance id, for every stored instance."""
        return {
            self.get(f"/instances/{i}/simplified-tags")["SOPInstanceUID"]: i
            for i in self.instances()
        }

    def instance_tags(self, instance: str) -> dict[str, Any]:
        """Every element of the stored instance (sequences and private tags included)."""
        return self.get(f"/instances/{instance}/tags")

    def instance_metadata(self, instance: str) -> dict[str, str]:
        """Orthanc's record of the reception: RemoteAET, CalledAET, TransferSyntax, ..."""
        return self.get(f"/instances/{instance}/metadata?expand")

    def instance_file(self, instance: str) -> bytes:
        return self.get_bytes(f"/instances/{instance}/file")

    def statistics(self) -> dict[str, Any]:
        return self.get("/statistics")

    def find_text(self, text: str) -> list[str]:
        """Where ``text`` occurs in any stored instance (case-insensitive), as
        "<instance>: <tag path>" for element values (sequences and private tags included),
        or "<instance>: file bytes" when it is only in a value the tag dump does not show
        (binary, too long). An empty list means the text is nowhere."""
        needle = text.lower()
        hits = []
        for instance in self.instances():
            found = [
                f"{instance}: {p}" for p in _search_tags(self.instance_tags(instance), needle, "")
            ]
            if (
                not found
                and needle.encode("utf-8", "replace") in self.instance_file(instance).lower()
            ):
                found = [f"{instance}: file bytes"]
            hits += found
        return hits

    def clear(self) -> None:
        for patient in self.get("/patients"):
            self._session.delete(f"{self.url}/patients/{patient}", timeout=60).raise_for_status()


def make_tls_files(directory: Path) -> dict[str, Path]:
    """A test CA and, signed by it, a server certificate for 127.0.0.1 and a client
    certificate (openssl CLI). Keys: ca, server_cert, server_key, client_cert, client_key."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        k: directory / f"{k.replace('_', '.')}.pem"
        for k in ("ca", "ca_key", "server_cert", "server_key", "client_cert", "client_key")
    }

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=fionagw test CA",
        "-keyout",
        str(files["ca_key"]),
        "-out",
        str(files["ca"]),
    )
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    for who, cn in (("server", "127.0.0.1"), ("client", "FIONA")):
        csr = directory / f"{who}.csr"
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={cn}",
            "-keyout",
            str(files[f"{who}_key"]),
            "-out",
            str(csr),
        )
        openssl(
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(files["ca"]),
            "-CAkey",
            str(files["ca_key"]),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            str(ext),
            "-out",
            str(files[f"{who}_cert"]),
        )
    return files


def _search_tags(tags: dict[str, Any], needle: str, prefix: str) -> Iterator[str]:
    for tag, element in tags.items():
        path = f"{prefix}{tag}"
        value = element.get("Value") if isinstance(element, dict) else None
        if element.get("Type") == "Sequence" and isinstance(value, list):
            for n, item in enumerate(value):
                yield from _search_tags(item, needle, f"{path}[{n}]/")
        elif isinstance(value, str) and needle in value.lower():
            yield path


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def orthanc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancPeer]:
    assert os.access(ORTHANC, os.X_OK), (
        "Orthanc is not installed: run ./tests/run, which installs it"
    )
    peer = OrthancPeer(tmp_path_factory.mktemp("orthanc")).start()
    yield peer
    peer.stop()


@pytest.fixture
def orthanc(orthanc_server: OrthancPeer) -> OrthancPeer:
    """The session's Orthanc, running (a test may have stopped it) and empty."""
    orthanc_server.start()
    orthanc_server.clear()
    orthanc_server.mark_log()
    return orthanc_server


@pytest.fixture(scope="session")
def orthanc_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., OrthancPeer]]:
    peers: list[OrthancPeer] = []

    def make(aet: str, **config: Any) -> OrthancPeer:
        peer = OrthancPeer(tmp_path_factory.mktemp(f"orthanc-{aet.lower()}"), aet, **config)
        peers.append(peer)
        return peer.start()

    yield make
    for peer in peers:
        peer.stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        peers = {
            id(v): v for v in getattr(item, "funcargs", {}).values() if isinstance(v, OrthancPeer)
        }
        for peer in peers.values():
            report.sections.append(
                (
                    f"Orthanc log ({peer.aet} on port {peer.dicom_port})",
                    peer.log_since_mark() or peer.log_tail(),
                )
            )
    return report
