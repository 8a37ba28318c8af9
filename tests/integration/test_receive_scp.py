"""The C-STORE/C-ECHO SCP against real peers: dcmtk's storescu/echoscu/storescp, pynetdicom.

Every test runs its own SCP (serve_scp in a thread) on a free port with its own DATADIR."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_preamble
from pydicom.filewriter import write_dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from fionagw.config import SiteConfig
from fionagw.receive import store, wire
from fionagw.receive.modality import modality_prefix
from support.raw_peer import RawPeer
from support.scp import archived, log_entries, running_scp, temp_leftovers
from support.site import echoscu, free_port, pydicom_test_file, storescu, write_config

# pydicom's bundled files, with the storescu option that proposes each file's own
# transfer syntax (so compressed data travels as it is, not decompressed).
CORPUS = {
    "MR_small.dcm": "-xe",  # explicit VR little endian
    "CT_small.dcm": "-xe",
    "MR_small_implicit.dcm": "-xi",  # implicit VR little endian
    "rtdose.dcm": "-xi",  # multi-frame RT Dose
    "MR_small_bigendian.dcm": "-xb",  # explicit VR big endian
    "image_dfl.dcm": "-xd",  # deflated
    "SC_rgb_jpeg_dcmtk.dcm": "-xy",  # JPEG baseline (.50)
    "examples_ybr_color.dcm": "-xy",  # multi-frame US, JPEG baseline
    "JPEG-lossy.dcm": "-xx",  # JPEG extended (.51)
    "SC_rgb_jpeg_gdcm.dcm": "-xs",  # JPEG lossless SV1 (.70)
    "MR_small_jpeg_ls_lossless.dcm": "-xt",  # JPEG-LS lossless (.80)
    "MR_small_jp2klossless.dcm": "-xv",  # JPEG 2000 lossless (.90)
    "JPEG2000.dcm": "-xw",  # JPEG 2000 (.91)
    "MR_small_RLE.dcm": "-xr",  # RLE lossless
    "SC_rgb_rle_2frame.dcm": "-xr",
    "test-SR.dcm": "-xe",  # Comprehensive SR
}


def split_file(path: Path) -> tuple[str, bytes]:
    """(transfer syntax, dataset bytes after the file meta) of a DICOM file."""
    from pydicom.filereader import _read_file_meta_info

    with open(path, "rb") as f:
        read_preamble(f, False)
        meta = _read_file_meta_info(f)
        return str(meta.TransferSyntaxUID), f.read()


@pytest.fixture
def scp(site_config: Path) -> Iterator[SiteConfig]:
    with running_scp(site_config) as cfg:
        yield cfg


def expected_name(path: Path) -> str:
    ds = dcmread(path, stop_before_pixels=True)
    return f"scp_{ds.StudyInstanceUID}/{modality_prefix(ds.SOPClassUID)}.{ds.SOPInstanceUID}"


def send_corpus(port: int, names: list[str], aet: str = "STORESCU") -> None:
    by_option: dict[str, list[Path]] = {}
    for name in names:
        by_option.setdefault(CORPUS[name], []).append(pydicom_test_file(name))
    for option, files in by_option.items():
        r = storescu(port, *files, aet=aet, extra=("-R", option, "-v"))
        assert r.returncode == 0, r.stdout + r.stderr
        for line in r.stderr.splitlines():  # storescu sent every file in its own syntax
            if line.startswith("I: Converting transfer syntax:"):
                source, target = line.split(":", 2)[2].split("->")
                assert source.strip() == target.strip(), line


# --- C-ECHO ----------------------------------------------------------------------------


def test_echoscu_succeeds(scp: SiteConfig) -> None:
    r = echoscu(scp.dicom_port)
    assert r.returncode == 0, r.stderr
    assert not archived(scp)


def test_pynetdicom_echo_and_any_called_aet(scp: SiteConfig) -> None:
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    ae = AE(ae_title="PYSCU")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", scp.dicom_port, ae_title="ANYTHING")
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()


# --- C-STORE from storescu: names, bytes, job files, FIFO -----------------------------


def test_storescu_corpus_bytes_names_and_job(scp: SiteConfig) -> None:
    names = list(CORPUS)
    send_corpus(scp.dicom_port, names)
    files = archived(scp)
    expected = {expected_name(pydicom_test_file(n)): n for n in names}
    assert set(files) == set(expected)
    for rel, name in expected.items():
        ts_src, _ = split_file(pydicom_test_file(name))
        ts_got, data = split_file(files[rel])
        assert ts_got == ts_src, f"{name}: stored in {ts_got}, sent in {ts_src}"
        ds = dcmread(files[rel])  # a complete, readable DICOM file
        assert ds.SOPInstanceUID == rel.rsplit("/", 1)[1].split(".", 1)[1]
        assert len(data) > 0
    studies = {rel.split("/")[0] for rel in files}
    jobs = sorted(os.listdir(scp.paths.arrived))
    assert jobs == sorted(f"STORESCU FIONA 127.0.0.1 {s}" for s in studies)
    assert not temp_leftovers(scp)
    assert all(oct(p.stat().st_mode & 0o777) == "0o640" for p in files.values())


def _storescp(port: int, outdir: Path, *options: str) -> subprocess.Popen:
    exe = shutil.which("storescp")
    assert exe, "dcmtk is not installed"
    outdir.mkdir()
    proc = subprocess.Popen(
        [exe, "+xa", "-pm", *options, "-od", str(outdir), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if echoscu(port).returncode == 0:
            return proc
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("storescp did not start")


def _send_private_class(port: int) -> str:
    """A CT relabelled with a private SOP Class (Siemens CSA non-image), via pynetdicom."""
    from pynetdicom import AE

    ds = dcmread(pydicom_test_file("CT_small.dcm"))
    ds.SOPClassUID = "1.3.12.2.1107.5.9.1"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ae = AE(ae_title="STORESCU")
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port)
    assert assoc.is_established
    status = assoc.send_c_store(ds)
    assoc.release()
    assert status.Status == 0x0000
    return f"scp_{ds.StudyInstanceUID}/UNKNOWN.{ds.SOPInstanceUID}"


@pytest.mark.slow
def test_names_and_bytes_equal_dcmtk_storescp(scp: SiteConfig, tmp_path: Path) -> None:
    """Stock storescp is the reference: its --sort-on-study-uid names, its bit-preserving
    (+B) bytes (dcmtk does not allow both in one storescp)."""
    names_port, bytes_port = free_port(), free_port()
    procs = [
        _storescp(names_port, tmp_path / "names", "--sort-on-study-uid", "scp"),
        _storescp(bytes_port, tmp_path / "bytes", "+B"),
    ]
    try:
        corpus = list(CORPUS)
        private = ""
        for port in (names_port, bytes_port, scp.dicom_port):
            send_corpus(port, corpus)
            private = _send_private_class(port)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
    ours = archived(scp)
    names = {
        str(p.relative_to(tmp_path / "names"))
        for p in (tmp_path / "names").rglob("*")
        if p.is_file()
    }
    assert set(ours) == names
    assert private in ours and private.split("/")[1].startswith("UNKNOWN.")
    for rel, path in ours.items():
        reference = tmp_path / "bytes" / rel.split("/")[1]
        assert split_file(path) == split_file(reference), f"{rel}: bytes differ from storescp +B"


def test_fifo_lines_with_reader(scp: SiteConfig) -> None:
    fifo = scp.paths.fifo
    assert fifo.exists() and fifo.is_fifo()
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        names = ["MR_small.dcm", "CT_small.dcm", "MR_small_RLE.dcm"]
        send_corpus(scp.dicom_port, names)
        data = b""
        deadline = time.monotonic() + 5
        while data.count(b"\n") < 3 and time.monotonic() < deadline:
            select.select([fd], [], [], 0.2)
            try:
                data += os.read(fd, 65536)
            except BlockingIOError:
                pass
    finally:
        os.close(fd)
    lines = data.decode().splitlines(keepends=True)
    archive = scp.paths.archive
    expected = []
    for name in names:
        study, fname = expected_name(pydicom_test_file(name)).split("/")
        expected.append(f"STORESCU,FIONA,127.0.0.1,{archive / study},{fname}\n")
    assert lines == expected
    assert b"\0" not in data


def test_resent_instance_replaces_old_copy(scp: SiteConfig) -> None:
    from pynetdicom import AE

    ds = dcmread(pydicom_test_file("MR_small.dcm"))
    ae = AE(ae_title="RESEND")
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", scp.dicom_port)
    assert assoc.send_c_store(ds).Status == 0
    [first] = archived(scp).values()
    inode = first.stat().st_ino
    ds.ImageComments = "second version"
    assert assoc.send_c_store(ds).Status == 0
    assoc.release()
    files = archived(scp)
    assert list(files.values()) == [first]
    assert first.stat().st_ino != inode  # a new file renamed over the old one
    assert dcmread(first).ImageComments == "second version"
    assert not temp_leftovers(scp)
    assert any(e.get("replaced") for e in log_entries(scp) if e["message"] == "stored")


def test_raw_bytes_kept_for_every_syntax(scp: SiteConfig, tmp_path: Path, monkeypatch) -> None:
    """pynetdicom sends the files' own bytes (chunked send); ours must be identical.

    Includes syntaxes storescu cannot propose: JPEG lossless .57, HTJ2K.
    """
    from pydicom.uid import HTJ2KLossless, JPEGLossless
    from pynetdicom import AE, _config

    files = [
        pydicom_test_file(n)
        for n in (
            "MR_small.dcm",
            "MR_small_bigendian.dcm",
            "MR_small_implicit.dcm",
            "image_dfl.dcm",
            "JPEG2000.dcm",
            "MR_small_jp2klossless.dcm",
            "JPEGLSNearLossless_16.dcm",
            "SC_rgb_jpeg_gdcm.dcm",
            "rtdose_rle.dcm",
        )
    ]
    # Relabelled copies: the bytes travel as they are, whatever the syntax says.
    for ts, stem in ((JPEGLossless, "jpeg57"), (HTJ2KLossless, "htj2k")):
        ds = dcmread(pydicom_test_file("SC_rgb_jpeg_gdcm.dcm"))
        ds.file_meta.TransferSyntaxUID = ts
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = (
            f"1.2.826.0.1.3680043.8.498.{len(stem)}.{ts.split('.')[-1]}"
        )
        ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.777"
        out = tmp_path / f"{stem}.dcm"
        ds.save_as(out, enforce_file_format=True)
        files.append(out)
    sources = {}
    ae = AE(ae_title="RAWSCU")
    for f in files:
        meta_ts, _ = split_file(f)
        ds = dcmread(f, stop_before_pixels=True)
        if "StudyInstanceUID" not in ds:
            continue  # JPEGLSNearLossless_16 has none: covered by the failure test
        sources[ds.SOPInstanceUID] = f
        ae.add_requested_context(ds.SOPClassUID, meta_ts)
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    assoc = ae.associate("127.0.0.1", scp.dicom_port)
    assert assoc.is_established
    for f in sources.values():
        assert assoc.send_c_store(f).Status == 0x0000, f
    assoc.release()
    stored = {p.name.split(".", 1)[1]: p for p in archived(scp).values()}
    assert set(stored) == set(sources)
    for sop, src in sources.items():
        assert split_file(stored[sop]) == split_file(src), src.name


def test_missing_study_uid_is_refused(scp: SiteConfig) -> None:
    r = storescu(
        scp.dicom_port, pydicom_test_file("JPEGLSNearLossless_08.dcm"), extra=("-R", "-xu", "-v")
    )
    assert r.returncode != 0
    assert "Received Store Response (Error: CannotUnderstand)" in r.stderr
    assert not archived(scp)
    failures = [e for e in log_entries(scp) if e["message"].startswith("store failed")]
    assert failures and failures[0]["status"] == f"0x{store.NO_STUDY_UID:04X}"
    assert "Study Instance UID" in failures[0]["message"]


def test_missing_sop_instance_uid_is_refused(scp: SiteConfig, tmp_path: Path, monkeypatch) -> None:
    from pynetdicom import AE, _config

    ds = dcmread(pydicom_test_file("CT_small.dcm"))
    del ds.SOPInstanceUID  # the file meta still names it, so pynetdicom can send the file
    src = tmp_path / "no-sop-uid.dcm"
    ds.save_as(src, enforce_file_format=False)
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    ae = AE(ae_title="PYSCU")
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", scp.dicom_port)
    status = assoc.send_c_store(src)
    assoc.release()
    assert status.Status == store.DATASET_MISMATCH
    assert "SOP Instance UID" in status.ErrorComment
    assert not archived(scp)
    assert not temp_leftovers(scp)


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
@pytest.mark.filterwarnings("ignore:The value length")
def test_non_conformant_uids_are_refused_never_merged(scp: SiteConfig, tmp_path: Path) -> None:
    """Five different instances whose UIDs FIONA mapped to two names ('/', '?' and '_' all
    to '_', cut at 128 characters), a Study UID that climbs out of the archive, a Series UID
    with an empty component: each is refused with 0xA900 and a comment; none is stored, none
    merged with another; the one conformant object is stored under its own name."""
    base = dcmread(pydicom_test_file("CT_small.dcm"))
    long_uid = "1." + "2" * 130
    cases = [
        ("sop", "1.2.3.4/5"),
        ("sop", "1.2.3.4?5"),
        ("sop", "1.2.3.4_5"),
        ("sop", long_uid + "1"),
        ("sop", long_uid + "2"),
        ("study", "../../../../escaped"),
        ("series", "1.2..3"),
    ]
    peer = RawPeer(scp.dicom_port)  # toolkits refuse to send UIDs over 64 characters
    peer.associate([(base.SOPClassUID, [ExplicitVRLittleEndian])])

    def send(ds: Dataset, message_id: int) -> Dataset:
        body = DicomBytesIO()
        body.is_little_endian, body.is_implicit_VR = True, False
        write_dataset(body, ds)
        return peer.store(ds.SOPClassUID, ds.SOPInstanceUID, message_id, body.getvalue())

    for i, (what, uid) in enumerate(cases):
        ds = dcmread(pydicom_test_file("CT_small.dcm"))
        ds.SOPInstanceUID = uid if what == "sop" else generate_uid()
        ds.StudyInstanceUID = uid if what == "study" else generate_uid()
        ds.SeriesInstanceUID = uid if what == "series" else generate_uid()
        rsp = send(ds, i + 1)
        assert rsp.Status == store.DATASET_MISMATCH, (what, uid)
        assert "UID" in rsp.ErrorComment
    good = dcmread(pydicom_test_file("CT_small.dcm"))
    good.StudyInstanceUID = generate_uid()
    assert send(good, 99).Status == 0x0000
    peer.sock.sendall(wire.pdu(wire.A_RELEASE_RQ_TYPE, b"\0\0\0\0"))
    assert peer.read_pdu()[0] == wire.A_RELEASE_RP_TYPE
    peer.close()
    deadline = time.monotonic() + 5
    while temp_leftovers(scp) and time.monotonic() < deadline:  # the spare temp of the next
        time.sleep(0.02)
    files = archived(scp)
    assert list(files) == [f"scp_{good.StudyInstanceUID}/CT.{good.SOPInstanceUID}"]
    assert not temp_leftovers(scp)
    assert not list(tmp_path.rglob("escaped"))
    failures = [e for e in log_entries(scp) if e["message"].startswith("store failed")]
    assert len(failures) == len(cases)
    for entry in failures:  # identifiers are not logged, only what was wrong with them
        assert "1.2.3" not in json.dumps(entry) and "escaped" not in json.dumps(entry)


# --- allow-lists -------------------------------------------------------------------------


def _config_with(tmp_path: Path, **receiver: object) -> Path:
    d = tmp_path / "site"
    d.mkdir()
    return write_config(d, receiver=receiver)


def test_calling_aet_allow_list(tmp_path: Path) -> None:
    with running_scp(_config_with(tmp_path, allowed_calling_aetitles=["MODALITY1"])) as cfg:
        rejected = storescu(cfg.dicom_port, pydicom_test_file("MR_small.dcm"), aet="INTRUDER")
        assert rejected.returncode != 0
        assert "Association Rejected" in rejected.stderr
        assert "Calling AE Title Not Recognized" in rejected.stderr
        assert not archived(cfg)
        ok = storescu(cfg.dicom_port, pydicom_test_file("MR_small.dcm"), aet="MODALITY1")
        assert ok.returncode == 0, ok.stderr
        assert len(archived(cfg)) == 1
        [entry] = [e for e in log_entries(cfg) if e["message"].startswith("association rejected")]
        assert entry["calling_aet"] == "INTRUDER" and entry["peer"] == "127.0.0.1"
        assert entry["level"] == "WARNING"


@pytest.mark.slow
def test_ip_allow_list(tmp_path: Path) -> None:
    with running_scp(_config_with(tmp_path, allowed_ips=["10.0.0.0/8", "192.168.1.7"])) as cfg:
        r = echoscu(cfg.dicom_port)
        assert r.returncode != 0
        assert "Peer aborted Association (or never connected)" in r.stderr  # closed at accept
        refused = [e for e in log_entries(cfg) if e["message"].startswith("connection refused")]
        assert refused and "allowed_ips" in refused[0]["message"]
        assert refused[0]["peer"] == "127.0.0.1"
    (tmp_path / "site").rename(tmp_path / "old")
    with running_scp(_config_with(tmp_path, allowed_ips=["127.0.0.0/8"])) as cfg:
        assert echoscu(cfg.dicom_port).returncode == 0


# --- TLS ---------------------------------------------------------------------------------


def _make_pki(d: Path) -> dict[str, Path]:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def write(name: str, k: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        (d / f"{name}.key").write_bytes(
            k.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        (d / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    ca_key = key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    write("ca", ca_key, ca)
    for i, name in enumerate(("server", "client"), start=2):
        k = key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name)
            .public_key(k.public_key())
            .serial_number(i)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
        )
        if name == "server":
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        write(name, k, builder.sign(ca_key, hashes.SHA256()))
    return {n: d / n for n in ("ca", "server", "client")}


def test_tls_with_client_certificates(tmp_path: Path) -> None:
    import ssl

    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    pki_dir = tmp_path / "pki"
    pki_dir.mkdir()
    pki = _make_pki(pki_dir)
    config = _config_with(
        tmp_path,
        tls_cert=str(pki["server"].with_suffix(".pem")),
        tls_key=str(pki["server"].with_suffix(".key")),
        tls_ca=str(pki["ca"].with_suffix(".pem")),
    )

    def client(with_cert: bool) -> ssl.SSLContext:
        ctx = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(pki["ca"].with_suffix(".pem"))
        )
        if with_cert:
            ctx.load_cert_chain(
                str(pki["client"].with_suffix(".pem")), str(pki["client"].with_suffix(".key"))
            )
        return ctx

    with running_scp(config) as cfg:
        ds = dcmread(pydicom_test_file("MR_small.dcm"))
        ae = AE(ae_title="TLSSCU")
        ae.add_requested_context(Verification)
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
        assoc = ae.associate("127.0.0.1", cfg.dicom_port, tls_args=(client(True), "127.0.0.1"))
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0
        assert assoc.send_c_store(ds).Status == 0
        assoc.release()
        assert len(archived(cfg)) == 1
        ae.acse_timeout = ae.network_timeout = 5
        assoc = ae.associate("127.0.0.1", cfg.dicom_port, tls_args=(client(False), "127.0.0.1"))
        assert not assoc.is_established  # no client certificate: refused
        plain = echoscu(cfg.dicom_port)  # no TLS at all: refused
        assert plain.returncode != 0
