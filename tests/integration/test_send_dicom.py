"""The dicom destination against Orthanc (the research PACS) and dcmtk's storescp.

A synthetic study (multi-series MR, CT) plus compressed files (JPEG baseline, JPEG lossless,
JPEG-LS, JPEG 2000, RLE) must arrive complete and unchanged; failures are reported per
instance; a PACS that is down gives one error line and nothing is lost.
"""

from __future__ import annotations

import io
import logging
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pydicom import dcmread
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    generate_uid,
)

from fionagw.config import load_config
from fionagw.send import SendContext, SendError, load_destinations
from fionagw.send.dicom import DicomDestination, read_instance, requested_contexts
from support import synth
from support.site import free_port, pydicom_test_file, wait_for, write_config

pytestmark = pytest.mark.slow

if TYPE_CHECKING:
    from support.orthanc_peer import OrthancPeer


STUDY_UID = "2.25.302113417372345058230926316513358746113"


PATIENT_NAME, PATIENT_ID = "Synthetic^Patient", "SYN0001"


CONTEXT = SendContext("PROJ", "PROJ_001", "baseline", STUDY_UID)


COMPRESSED = {  # pydicom's own test files, restamped into our study
    "SC_rgb_jpeg_dcmtk.dcm": JPEGBaseline8Bit,
    "MR_small_jpeg_ls_lossless.dcm": "1.2.840.10008.1.2.4.80",
    "MR_small_jp2klossless.dcm": "1.2.840.10008.1.2.4.90",
    "MR_small_RLE.dcm": "1.2.840.10008.1.2.5",
}


def _restamp(source: Path, target: Path, **changes: str) -> Path:
    """A copy of ``source`` in our study with its own series and SOP instance UIDs. Only
    header elements change; the (compressed) pixel data bytes are written back as they are."""
    ds = dcmread(source)
    ds.StudyInstanceUID = STUDY_UID
    ds.PatientName, ds.PatientID = PATIENT_NAME, PATIENT_ID
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(target, enforce_file_format=True)
    return target


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """MR (7 series) + CT + compressed files, one StudyInstanceUID, sorted paths."""
    root = tmp_path_factory.mktemp("study")
    files = synth.standard_mr_study(root, n_per_series=3, study_uid=STUDY_UID, rows=64, cols=64)
    files += synth.ct_study(root / "ct", n_images=4, study_uid=STUDY_UID, seed=1, rows=64, cols=64)
    for n, name in enumerate(COMPRESSED, start=1):
        files.append(_restamp(pydicom_test_file(name), root / f"C{n:03d}" / name))
    # JPEG Lossless SV1 (process 14), made by dcmtk from one of the MR images
    plain = _restamp(files[3], root / "tmp" / "plain.dcm")
    lossless = root / "C900" / "jpeg-lossless.dcm"
    lossless.parent.mkdir()
    subprocess.run(["dcmcjpeg", "+e1", str(plain), str(lossless)], check=True, capture_output=True)
    files.append(lossless)
    return sorted(files)


@pytest.fixture
def pacs(orthanc: OrthancPeer) -> DicomDestination:
    return DicomDestination(
        "research-pacs", "127.0.0.1", orthanc.dicom_port, orthanc.aet, "FIONA", timeout=10
    )


def _syntax(path: Path) -> str:
    return str(read_instance(path).syntax)


def _assert_arrived_unchanged(
    peer: OrthancPeer, files: list[Path], *, same_syntax: bool = True
) -> None:
    stored = peer.sop_uids()
    assert len(stored) == len(files)
    for path in files:
        source = dcmread(path)
        copy = dcmread(io.BytesIO(peer.instance_file(stored[source.SOPInstanceUID])))
        if same_syntax:
            assert copy.file_meta.TransferSyntaxUID == source.file_meta.TransferSyntaxUID, path.name
        assert sorted(e.tag for e in copy) == sorted(e.tag for e in source), path.name
        for element in source:
            assert copy[element.tag].value == element.value, f"{path.name} {element.tag}"
            # dcmtk stores encapsulated pixel data as OB, not OW; implicit VR carries no VRs
            if same_syntax and element.keyword != "PixelData":
                assert copy[element.tag].VR == element.VR, f"{path.name} {element.tag}"
        assert copy.PixelData == source.PixelData, path.name


def test_study_arrives_complete_and_as_sent(orthanc, pacs, study):
    syntaxes = {_syntax(p) for p in study}
    assert {
        ExplicitVRLittleEndian,
        JPEGBaseline8Bit,
        JPEGLosslessSV1,
        *COMPRESSED.values(),
    } <= syntaxes
    result = pacs.send_study(study, CONTEXT)
    assert result.ok, result.summary()
    assert (result.sent, result.warnings, result.failed, result.error) == (len(study), [], [], "")
    assert orthanc.study_uids() == [STUDY_UID]
    (study_id,) = orthanc.studies()
    assert orthanc.get(f"/studies/{study_id}/statistics")["CountInstances"] == len(study)
    assert len(orthanc.series()) == len({p.parent for p in study})
    _assert_arrived_unchanged(orthanc, study)
    some = orthanc.instances()[0]
    received = orthanc.instance_metadata(some)
    assert (received["RemoteAET"], received["CalledAET"]) == ("FIONA", "ORTHANC")


def test_sending_twice_leaves_one_copy(orthanc, pacs, study):
    first = pacs.send_study(study, CONTEXT)
    second = pacs.send_study(study, CONTEXT)
    assert first.ok and second.ok and first.sent == second.sent == len(study)
    assert len(orthanc.instances()) == len(study)
    assert orthanc.study_uids() == [STUDY_UID]


def test_pacs_down_then_up(orthanc, pacs, study):
    orthanc.stop()
    down = pacs.send_study(study, CONTEXT)
    assert not down.ok and down.sent == 0 and down.failed == []
    assert down.error == (
        f"cannot connect to ORTHANC@127.0.0.1:{orthanc.dicom_port}: connection refused; "
        f"{len(study)} of {len(study)} instances not sent"
    )
    with pytest.raises(SendError) as err:
        pacs.check()
    assert (
        str(err.value)
        == f"cannot connect to ORTHANC@127.0.0.1:{orthanc.dicom_port}: connection refused"
    )
    orthanc.start()
    up = pacs.send_study(study, CONTEXT)
    assert up.ok and up.sent == len(study)
    assert len(orthanc.instances()) == len(study)


def test_refused_sop_class_and_failure_status_are_reported_per_instance(
    orthanc, pacs, study, tmp_path
):
    mr = [p for p in study if p.parent.name.startswith("S")]
    good = mr[:3]
    unknown_class = _restamp(
        mr[3], tmp_path / "X1" / "unknown.dcm", SOPClassUID="1.2.826.0.1.3680043.10.543.77"
    )
    unknown_class_meta = dcmread(unknown_class)
    unknown_class_meta.file_meta.MediaStorageSOPClassUID = unknown_class_meta.SOPClassUID
    unknown_class_meta.save_as(unknown_class, enforce_file_format=True)
    no_series = _restamp(mr[4], tmp_path / "X2" / "no-series.dcm")
    ds = dcmread(no_series)
    del (
        ds.SeriesInstanceUID
    )  # Orthanc cannot index it: answers 0xA700 (FIONA's "Refused: OutOfResources")
    ds.save_as(no_series, enforce_file_format=True)
    not_dicom = tmp_path / "X3" / "notes.txt"
    not_dicom.parent.mkdir()
    not_dicom.write_text("not an image\n")

    result = pacs.send_study([*good, unknown_class, no_series, not_dicom], CONTEXT)
    assert not result.ok and result.error == "" and result.sent == len(good)
    reasons = dict(result.failed)
    assert set(reasons) == {unknown_class, no_series, not_dicom}
    refused = "the peer does not accept 1.2.826.0.1.3680043.10.543.77 offered as Explicit VR Little Endian"
    assert reasons[unknown_class] == refused
    assert reasons[no_series].startswith("refused with status 0xA700 (Refused: Out of Resources)")
    assert reasons[not_dicom] == "not a DICOM Part-10 file"
    assert all("\n" not in r for r in reasons.values())
    assert len(orthanc.instances()) == len(good)

    only_refused = pacs.send_study([unknown_class], CONTEXT)  # no context accepted at all
    assert not only_refused.ok and only_refused.error == "" and only_refused.sent == 0
    assert only_refused.failed == [(unknown_class, refused)]


def test_contexts_offer_each_files_own_syntax_plus_uncompressed_fallback(study):
    instances = [read_instance(p) for p in study]
    contexts = [
        (str(cx.abstract_syntax), [str(ts) for ts in cx.transfer_syntax])
        for cx in requested_contexts(instances)
    ]
    mr, ct = "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.2"
    assert (mr, [ExplicitVRLittleEndian]) in contexts and (mr, [ImplicitVRLittleEndian]) in contexts
    assert (mr, [JPEGLosslessSV1]) in contexts and (mr, ["1.2.840.10008.1.2.5"]) in contexts
    assert (ct, [ExplicitVRLittleEndian]) in contexts and (ct, [ImplicitVRLittleEndian]) in contexts
    assert ("1.2.840.10008.5.1.4.1.1.7", [JPEGBaseline8Bit]) in contexts  # compressed: no fallback
    # MR: 5 syntaxes + implicit; CT: explicit + implicit; SC: JPEG baseline
    assert len(contexts) == len(set(map(str, contexts))) == 9


def test_check_up_and_wrong_called_aetitle(orthanc, pacs):
    text = pacs.check()
    assert text.startswith(f"dicom ORTHANC@127.0.0.1:{orthanc.dicom_port}: C-ECHO OK in ")
    wrong = DicomDestination(
        "x", "127.0.0.1", orthanc.dicom_port, "NOT_ORTHANC", "FIONA", timeout=10
    )
    with pytest.raises(SendError) as err:
        wrong.check()
    assert str(err.value) == (
        f"NOT_ORTHANC@127.0.0.1:{orthanc.dicom_port}: association rejected: "
        "Called AE title not recognised (Rejected (Permanent), DUL service-user)"
    )
    result = wrong.send_study([], CONTEXT)
    assert result.ok and result.sent == 0


def test_unknown_host_is_one_line(study):
    dest = DicomDestination("x", "no-such-host.invalid", 104, "PACS", "FIONA", timeout=5)
    result = dest.send_study(study[:2], CONTEXT)
    assert not result.ok and result.error.startswith(
        "cannot connect to PACS@no-such-host.invalid:104: unknown host"
    )
    assert "\n" not in result.error


def test_no_phi_in_our_log_records(orthanc, pacs, study, caplog):
    caplog.set_level(logging.DEBUG)
    assert pacs.send_study(study, CONTEXT).ok
    ours = [r for r in caplog.records if r.name.startswith("fionagw")]
    assert any(r.getMessage() == "study sent" and r.study_uid == STUDY_UID for r in ours)
    for record in ours:
        text = repr(vars(record))
        assert "Synthetic" not in text and PATIENT_ID not in text
    # ... while the images themselves (not yet de-identified here) do hold the name
    assert (
        orthanc.find_text("synthetic^PATIENT") and orthanc.find_text("no such text anywhere") == []
    )


# -- connection lost in mid-study -----------------------------------------------------------


class CuttingProxy:
    """TCP forwarder to a peer that cuts the first connection once ``cut_after`` bytes went
    from the client to the peer (a network failure in the middle of an instance)."""

    def __init__(self, target_port: int, cut_after: int) -> None:
        self.target_port, self.cut_after = target_port, cut_after
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self.cut = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            limit = self.cut_after if not self.cut.is_set() else None
            threading.Thread(target=self._pump, args=(client, upstream, limit), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        total = 0
        try:
            while data := src.recv(65536):
                if limit is not None and total + len(data) >= limit:
                    dst.sendall(data[: limit - total])
                    self.cut.set()
                    break
                total += len(data)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.server.close()


def test_connection_lost_mid_study_reconnects_and_continues(orthanc, study, caplog):
    image_bytes = study[0].stat().st_size
    proxy = CuttingProxy(orthanc.dicom_port, cut_after=int(image_bytes * 5.5))
    try:
        dest = DicomDestination("pacs", "127.0.0.1", proxy.port, orthanc.aet, "FIONA", timeout=10)
        with caplog.at_level(logging.WARNING, logger="fionagw"):
            result = dest.send_study(study, CONTEXT)
    finally:
        proxy.close()
    assert proxy.cut.is_set() and proxy.connections == 2
    assert result.ok and result.sent == len(study), result.summary()
    assert [r.getMessage() for r in caplog.records if r.name.startswith("fionagw")] == [
        "association lost, reconnecting"
    ]
    _assert_arrived_unchanged(orthanc, study)


def _storescp(*options: str) -> Iterator[int]:
    """dcmtk's storescp (AE STORESCP, all transfer syntaxes) on a free port."""
    port = free_port()
    exe = shutil.which("storescp")
    assert exe, "dcmtk is not installed: run ./tests/run, which installs it"
    proc = subprocess.Popen(
        [exe, "+xa", *options, "-aet", "STORESCP", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 30, "storescp")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def aborting_storescp(tmp_path: Path) -> Iterator[int]:
    """storescp that aborts every association after the first C-STORE request."""
    yield from _storescp("--abort-after", "-od", str(tmp_path))


@pytest.fixture
def discarding_storescp() -> Iterator[int]:
    """storescp that answers Success and throws the data away (fast)."""
    yield from _storescp("--ignore")


def test_a_thousand_instances_on_one_association_without_a_stall(
    discarding_storescp, tmp_path, caplog
):
    """pynetdicom's reactor thread used to steal about one C-STORE response in 500 (see
    _keep_responses_for_the_sender): the send then hung until the DIMSE timeout."""
    files = synth.write_study(
        tmp_path, series=[synth.SeriesSpec("many", 1000, modality="MR")], rows=16, cols=16
    )
    dest = DicomDestination("scp", "127.0.0.1", discarding_storescp, "STORESCP", "FIONA", timeout=5)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        result = dest.send_study(files, CONTEXT)
    assert result.ok and result.sent == 1000
    assert [r.getMessage() for r in caplog.records] == []
    assert time.monotonic() - started < 60


def test_peer_aborting_every_time_gives_up_after_bounded_reconnects(aborting_storescp, study):
    dest = DicomDestination(
        "scp", "127.0.0.1", aborting_storescp, "STORESCP", "FIONA", timeout=10, reconnects=2
    )
    dest.reconnect_delay = 0.05
    started = time.monotonic()
    result = dest.send_study(study, CONTEXT)
    assert time.monotonic() - started < 20
    assert not result.ok and result.sent == 0 and result.failed == []
    assert result.error == (
        f"association with STORESCP@127.0.0.1:{aborting_storescp} lost 3 times in a row, "
        f"each time while sending {study[0].name}; {len(study)} of {len(study)} instances not sent"
    )


# -- peers with other capabilities --------------------------------------------------------


@pytest.fixture(scope="module")
def implicit_only_orthanc(orthanc_factory: Callable[..., OrthancPeer]) -> OrthancPeer:
    """A PACS that takes only Implicit VR Little Endian."""
    return orthanc_factory("IMPLICIT", AcceptedTransferSyntaxes=[ImplicitVRLittleEndian])


def test_uncompressed_falls_back_compressed_fails_when_peer_refuses_the_syntax(
    implicit_only_orthanc, study
):
    peer = implicit_only_orthanc
    peer.clear()
    dest = DicomDestination("implicit", "127.0.0.1", peer.dicom_port, peer.aet, "FIONA", timeout=10)
    result = dest.send_study(study, CONTEXT)
    compressed = [
        p for p in study if _syntax(p) not in (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
    ]
    plain = [p for p in study if p not in compressed]
    assert len(compressed) == 5 and result.sent == len(plain) and result.error == ""
    assert sorted(p for p, _ in result.failed) == sorted(compressed)
    jpeg = next(p for p in compressed if _syntax(p) == JPEGBaseline8Bit)
    assert dict(result.failed)[jpeg] == (
        "the peer does not accept Secondary Capture Image Storage "
        "offered as JPEG Baseline (Process 1)"
    )
    rle = next(p for p in compressed if p.name == "MR_small_RLE.dcm")  # MR itself is accepted
    assert dict(result.failed)[rle] == "the peer does not accept MR Image Storage in RLE Lossless"
    _assert_arrived_unchanged(
        peer, plain, same_syntax=False
    )  # same elements, implicit VR on the wire


@pytest.fixture(scope="module")
def tls_orthanc(
    orthanc_factory: Callable[..., OrthancPeer], tls_files: dict[str, Path]
) -> OrthancPeer:
    """A PACS on DICOM TLS that requires a client certificate signed by the test CA."""
    return orthanc_factory(
        "SECURE",
        DicomTlsEnabled=True,
        DicomTlsCertificate=str(tls_files["server_cert"]),
        DicomTlsPrivateKey=str(tls_files["server_key"]),
        DicomTlsTrustedCertificates=str(tls_files["ca"]),
        DicomTlsRemoteCertificateRequired=True,
    )


def _tls_destination(
    peer: OrthancPeer, tmp_path: Path, tls: dict[str, object], host: str = "127.0.0.1"
) -> DicomDestination:
    cfg = load_config(
        write_config(
            tmp_path,
            destinations={
                "secure": {
                    "type": "dicom",
                    "host": host,
                    "port": peer.dicom_port,
                    "called_aetitle": peer.aet,
                    "timeout": 10,
                    "tls": tls,
                }
            },
        )
    )
    dest = load_destinations(cfg)["secure"]
    assert isinstance(dest, DicomDestination)
    return dest


def test_tls_with_client_certificate(tls_orthanc, tls_files, study, tmp_path):
    tls_orthanc.clear()
    dest = _tls_destination(
        tls_orthanc,
        tmp_path,
        {
            "cert": str(tls_files["client_cert"]),
            "key": str(tls_files["client_key"]),
            "ca": str(tls_files["ca"]),
        },
    )
    assert dest.check().endswith(" over TLS")
    result = dest.send_study(study, CONTEXT)
    assert result.ok and result.sent == len(study)
    _assert_arrived_unchanged(tls_orthanc, study)


def test_tls_checks_the_host_name_unless_told_not_to(tls_orthanc, tls_files, tmp_path):
    client = {
        "cert": str(tls_files["client_cert"]),
        "key": str(tls_files["client_key"]),
        "ca": str(tls_files["ca"]),
    }
    by_name = _tls_destination(
        tls_orthanc, tmp_path, client, host="localhost"
    )  # certificate names 127.0.0.1
    with pytest.raises(SendError) as err:
        by_name.check()
    assert str(err.value).startswith(
        f"cannot connect to SECURE@localhost:{tls_orthanc.dicom_port}: "
        "TLS: the peer's certificate is not trusted: Hostname mismatch"
    )
    unchecked = _tls_destination(
        tls_orthanc, tmp_path, {**client, "check_hostname": False}, host="localhost"
    )
    assert unchecked.check().endswith(" over TLS")


def test_tls_untrusted_server_and_missing_client_certificate(
    tls_orthanc, tls_files, study, tmp_path
):
    other_ca = tmp_path / "other-ca.pem"  # a CA that did not sign the server's certificate
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=other CA",
            "-keyout",
            str(tmp_path / "other.key"),
            "-out",
            str(other_ca),
        ],
        check=True,
        capture_output=True,
    )
    untrusted = _tls_destination(tls_orthanc, tmp_path, {"ca": str(other_ca)})
    with pytest.raises(SendError) as err:
        untrusted.check()
    assert str(err.value).startswith(
        f"cannot connect to SECURE@127.0.0.1:{tls_orthanc.dicom_port}: "
        "TLS: the peer's certificate is not trusted: "
    )
    no_client_cert = _tls_destination(tls_orthanc, tmp_path, {"ca": str(tls_files["ca"])})
    result = no_client_cert.send_study(study[:3], CONTEXT)
    assert not result.ok and result.sent == 0
    assert result.error.startswith(f"cannot connect to SECURE@127.0.0.1:{tls_orthanc.dicom_port}: ")
    assert "\n" not in result.error


def test_find_text_searches_sequences_private_tags_and_long_values(orthanc, pacs, study, tmp_path):
    """The helper other tests use for PHI checks must see everywhere a name could hide."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    path = _restamp(study[-1], tmp_path / "X" / "hidden.dcm")
    ds = dcmread(path)
    block = ds.private_block(0x0041, "FIONAGW TEST", create=True)
    block.add_new(0x10, "LO", "Hidden^InPrivate")
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3"
    item.PersonName = "Hidden^InSequence"
    ds.ReferencedPerformedProcedureStepSequence = Sequence([item])
    ds.add_new(0x00204000, "LT", "x" * 5000 + " Hidden^InLongText")  # ImageComments
    ds.save_as(path, enforce_file_format=True)
    assert pacs.send_study([path], CONTEXT).ok
    (instance,) = orthanc.instances()
    assert orthanc.find_text("hidden^inprivate") == [f"{instance}: 0041,1010"]
    assert orthanc.find_text("Hidden^InSequence") == [f"{instance}: 0008,1111[0]/0040,a123"]
    # Orthanc's tag dump shows "TooLong" for this value: the file bytes are searched instead
    assert orthanc.find_text("Hidden^InLongText") == [f"{instance}: file bytes"]
    assert orthanc.find_text("Hidden^Nowhere") == []


def test_several_associations_and_small_peer_pdus_deliver_every_instance_unchanged(
    orthanc_factory, study, caplog
):
    """Our data loop frames each file into the peer's (small) PDUs and spreads a study over
    several associations at once: every instance arrives byte-for-byte as stored."""
    peer = orthanc_factory("SMALLPDU", MaximumPduLength=4096)
    dest = DicomDestination(
        "research-pacs", "127.0.0.1", peer.dicom_port, peer.aet, "FIONA", associations=3
    )
    dest.min_per_association = 5
    with caplog.at_level(logging.INFO, logger="fionagw.send.dicom"):
        result = dest.send_study(study, CONTEXT)
    assert result.ok and result.sent == len(study), result.summary()
    [record] = [r for r in caplog.records if r.getMessage() == "study sent"]
    assert record.associations == 3
    _assert_arrived_unchanged(peer, study)


def test_verification_after_a_send_lists_what_the_pacs_lacks(orthanc, pacs, study):
    """C-FIND at study, series and instance level against Orthanc: verified when every SOP
    Instance UID is there, the missing ones named when not, "missing" for an unknown study,
    "unverifiable" (with the reason) for a peer without C-FIND."""
    assert pacs.send_study(study, CONTEXT).ok
    expected: dict[str, list[str]] = {}
    for path in study:
        ds = dcmread(path, stop_before_pixels=True)
        expected.setdefault(str(ds.SeriesInstanceUID), []).append(str(ds.SOPInstanceUID))
    v = pacs.verify(STUDY_UID, expected)
    assert v is not None and (v.status, v.found, v.method) == ("verified", len(study), "instances")
    by_sop = orthanc.sop_uids()
    gone = sorted(by_sop)[:2]
    for sop in gone:
        orthanc._session.delete(f"{orthanc.url}/instances/{by_sop[sop]}").raise_for_status()
    v = pacs.verify(STUDY_UID, expected)
    assert (v.status, v.found, sorted(v.missing)) == ("incomplete", len(study) - 2, gone)
    v = pacs.verify(generate_uid(), expected)
    assert (v.status, v.found) == ("missing", 0)
    no_find = DicomDestination("x", "127.0.0.1", free_port(), "NOBODY", "FIONA", timeout=5).verify(
        STUDY_UID, expected
    )
    assert no_find is not None and no_find.status == "unverifiable"
    assert "connection refused" in no_find.error
