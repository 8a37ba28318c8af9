"""The ``dicom`` destination: C-STORE to a research PACS (FIONA ran storescu).

* One association per study (``associations`` at once for a large one); its presentation
  contexts come from the files' SOP classes and transfer syntaxes, each offered in the file's
  own syntax. Our own data loop (store_scu.py) sends each file's bytes as stored, without
  decoding. For an uncompressed file the other little-endian syntaxes are offered too; if the
  peer refuses the file's own, pynetdicom sends it and re-encodes the dataset (explicit <->
  implicit VR), which it cannot do for compressed syntaxes: such an instance fails with the
  reason.
* Per-instance status: 0x0000 stored; 0xB000/0xB006/0xB007 stored with a warning (recorded);
  anything else is a failure of that instance.
* An abort or lost connection in mid-study: reconnect and go on from the instance that was
  not confirmed, at most ``reconnects`` times in a row without progress. A peer that cannot
  be reached sets ``error``: the caller sends the whole study again later; nothing is lost
  (the research PACS keeps one copy per SOP Instance UID).
* After a send, ``verify`` asks the PACS by C-FIND what it holds (verify.py).
* TCP_NODELAY on every socket; optional TLS (client certificate and CA from the config).
* pynetdicom 3 can lose a C-STORE response to its own reactor thread (about 1 in 500 on
  loopback): see _keep_responses_for_the_sender (the pynetdicom path only).
"""

from __future__ import annotations

import copy
import logging
import socket
import ssl
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_file_meta_info
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, _config, build_context, evt
from pynetdicom.association import Association
from pynetdicom.pdu import A_ABORT_RQ, A_ASSOCIATE_RJ
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.status import STORAGE_SERVICE_CLASS_STATUS

from fionagw.send.base import Destination, SendContext, SendError, SendResult, one_line
from fionagw.send.store_scu import Lost, NoContexts, StoreAssociation, dataset_offset, read_meta

if TYPE_CHECKING:
    from fionagw.send.dicom_settings import TlsSettings
    from fionagw.send.verify import Verification

log = logging.getLogger("fionagw.send.dicom")

# send_c_store(path) then streams the encoded dataset from the file instead of decoding it
# with dcmread and encoding it again (process-wide; we never want the round trip).
_config.STORE_SEND_CHUNKED_DATASET = True

MAX_CONTEXTS = 128  # presentation context IDs are the odd numbers 1-255
MIN_PER_ASSOCIATION = 50  # a study of fewer instances per association is not worth another
WARNING_STATUSES = {
    0xB000: "coercion of data elements",
    0xB006: "elements discarded",
    0xB007: "data set does not match SOP class",
}
_LITTLE_ENDIAN = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)


def store_status(code: int, comment: str = "") -> tuple[str, str]:
    """("success" | "warning" | "failure", one-line text) for a C-STORE response status."""
    if code == 0x0000:
        return "success", ""
    if code in WARNING_STATUSES:
        return "warning", f"stored with warning 0x{code:04X} ({WARNING_STATUSES[code]})"
    meaning = STORAGE_SERVICE_CLASS_STATUS.get(code, ("", "unknown status"))[1]
    text = f"refused with status 0x{code:04X} ({meaning})"
    return "failure", text + (f": {one_line(comment)}" if comment else "")


@dataclass(frozen=True)
class Instance:
    """What we need of a file to send it, from its File Meta Information only."""

    path: Path
    sop_class: UID
    sop_uid: UID
    syntax: UID


class _Unreadable(Exception):
    pass


def read_instance(path: Path) -> Instance:
    """The instance's UIDs from its File Meta Information: our own parse of the meta group
    (pydicom's took ~1 ms a file, as long as sending it), pydicom's when ours cannot."""
    try:
        with open(path, "rb") as f:
            meta_group = read_meta(f)
    except OSError as exc:
        raise _Unreadable(f"cannot read: {exc.strerror}") from None
    if meta_group is not None:
        found = [meta_group[1].get(n, "") for n in (0x0002, 0x0003, 0x0010)]
        if all(found):
            return Instance(path, UID(found[0]), UID(found[1]), UID(found[2]))
    try:
        meta = read_file_meta_info(path)
    except InvalidDicomError:
        raise _Unreadable("not a DICOM Part-10 file") from None
    except OSError as exc:
        raise _Unreadable(f"cannot read: {exc.strerror}") from None
    except Exception as exc:  # truncated or garbled meta information
        raise _Unreadable(f"unreadable file meta information: {one_line(exc)}") from None
    values = [
        meta.get(k)
        for k in ("MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID", "TransferSyntaxUID")
    ]
    if not all(values):
        raise _Unreadable(
            "the file meta information lacks the SOP class, SOP instance or transfer syntax UID"
        )
    return Instance(path, UID(str(values[0])), UID(str(values[1])), UID(str(values[2])))


def requested_contexts(instances: Sequence[Instance]) -> list[PresentationContext]:
    """One context per (SOP class, file syntax); plus, for uncompressed files, one with the
    little-endian syntaxes not yet offered, as the fallback pynetdicom can convert to."""
    by_class: dict[str, list[UID]] = {}
    for inst in instances:
        syntaxes = by_class.setdefault(inst.sop_class, [])
        if inst.syntax not in syntaxes:
            syntaxes.append(inst.syntax)
    contexts = []
    for sop_class, syntaxes in by_class.items():
        contexts += [build_context(sop_class, ts) for ts in syntaxes]
        if any(not ts.is_compressed and ts != ImplicitVRLittleEndian for ts in syntaxes):
            extra = [ts for ts in _LITTLE_ENDIAN if ts not in syntaxes]
            if extra:
                contexts.append(build_context(sop_class, extra))
    return contexts


def batches(
    instances: Sequence[Instance],
) -> Iterator[tuple[list[PresentationContext], list[Instance]]]:
    """Split a study whose contexts exceed one association's 128 into several associations
    (by SOP class); normally there is exactly one batch."""
    contexts = requested_contexts(instances)
    if len(contexts) <= MAX_CONTEXTS:
        yield contexts, list(instances)
        return
    batch_cx: list[PresentationContext] = []
    classes: set[str] = set()
    for sop_class in dict.fromkeys(cx.abstract_syntax for cx in contexts):
        own = [cx for cx in contexts if cx.abstract_syntax == sop_class]
        if batch_cx and len(batch_cx) + len(own) > MAX_CONTEXTS:
            yield batch_cx, [i for i in instances if i.sop_class in classes]
            batch_cx, classes = [], set()
        batch_cx += own[:MAX_CONTEXTS]
        classes.add(str(sop_class))
    if batch_cx:
        yield batch_cx, [i for i in instances if i.sop_class in classes]


def how_to_send(assoc: Association, inst: Instance) -> Path | str | None:
    """The path (exact syntax accepted: stream the bytes), None (an uncompressed syntax of the
    same byte order accepted: send the decoded dataset, pynetdicom re-encodes), or the reason
    the peer cannot take this instance."""
    accepted = [
        cx.transfer_syntax[0]
        for cx in assoc.accepted_contexts
        if cx.abstract_syntax == inst.sop_class
    ]
    if inst.syntax in accepted:
        return inst.path
    if not inst.syntax.is_compressed and any(
        not ts.is_compressed and ts.is_little_endian == inst.syntax.is_little_endian
        for ts in accepted
    ):
        return None
    return refusal(inst, accepted)


def refusal(inst: Instance, accepted: Sequence[UID] = ()) -> str:
    """Why the peer takes no context for ``inst`` (``accepted``: the syntaxes it took for the
    SOP class). Peers' per-context result codes are unreliable (dcmtk answers "abstract syntax
    not supported" when only the transfer syntax is), so say what is certain."""
    if accepted:
        return f"the peer does not accept {inst.sop_class.name} in {inst.syntax.name}"
    return f"the peer does not accept {inst.sop_class.name} offered as {inst.syntax.name}"


class _Listener:
    """Event handlers of one association: TCP_NODELAY, and why the peer said no."""

    def __init__(self) -> None:
        self.refusal = ""

    def on_open(self, event: evt.Event) -> None:
        try:
            event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (AttributeError, OSError):
            pass

    def on_pdu(self, event: evt.Event) -> None:
        pdu = event.pdu  # type: ignore[attr-defined]
        if isinstance(pdu, A_ASSOCIATE_RJ):
            self.refusal = (
                f"association rejected: {pdu.reason_str} ({pdu.result_str}, {pdu.source_str})"
            )
        elif isinstance(pdu, A_ABORT_RQ):
            self.refusal = f"association aborted by the peer: {pdu.reason_str}"

    def handlers(self) -> list:
        return [(evt.EVT_CONN_OPEN, self.on_open), (evt.EVT_PDU_RECV, self.on_pdu)]


def _keep_responses_for_the_sender(assoc: Association) -> None:
    """Work around a race in pynetdicom 3: the association's reactor thread may still be
    running when send_c_store() thinks it paused it (a stale ``_is_paused`` flag), take the
    C-STORE response off the DIMSE queue and drop it ("Received unexpected C-STORE service
    message"); the sender then waits for the DIMSE timeout and aborts. On loopback this hit
    about one store in 500. The reactor now puts any response back for the sender."""
    serve = assoc._serve_request

    def serve_or_requeue(msg: Any, context_id: int) -> None:
        if msg.is_valid_response:
            assoc.dimse.msg_queue.put((context_id, msg))
        else:
            serve(msg, context_id)

    assoc._serve_request = serve_or_requeue  # type: ignore[method-assign]


class _NoContexts(Exception):
    """The peer accepted none of the presentation contexts offered."""


class DicomDestination(Destination):
    type = "dicom"  # the destination type of DicomSettings, which builds this

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        called_aetitle: str,
        calling_aetitle: str,
        *,
        tls: TlsSettings | None = None,
        timeout: float = 30.0,
        reconnects: int = 3,
        verify: bool = True,
        query_port: int = 0,
        query_aetitle: str = "",
        associations: int = 1,
        max_pdu: int = 1024 * 1024,
    ) -> None:
        super().__init__(name)
        self.host, self.port = host, port
        self.called_aetitle, self.calling_aetitle = called_aetitle, calling_aetitle
        self.tls, self.timeout, self.reconnects = tls, timeout, reconnects
        self.verify_sends = verify
        self.query_port = query_port or port
        self.query_aetitle = query_aetitle or called_aetitle
        self.associations, self.max_pdu = associations, max_pdu
        self.min_per_association = MIN_PER_ASSOCIATION
        self.reconnect_delay = 1.0  # doubled after each further attempt without progress

    def describe(self) -> str:
        return f"dicom {self.where}{' (TLS)' if self.tls else ''} as {self.calling_aetitle}"

    @property
    def where(self) -> str:
        return f"{self.called_aetitle}@{self.host}:{self.port}"

    # -- association ----------------------------------------------------------------------

    def associate_for_query(
        self,
        contexts: list[PresentationContext],
        ext_neg: list[Any] | None = None,
        handlers: list[Any] | None = None,
    ) -> tuple[AE, Association]:
        """An association with the query AE (C-FIND, C-MOVE, C-GET), or SendError; end it
        with close(). ``ext_neg``/``handlers``: role selection and C-STORE handler of C-GET."""
        try:
            return self._associate(
                contexts, self.query_port, self.query_aetitle, ext_neg=ext_neg, handlers=handlers
            )
        except _NoContexts:
            raise SendError(
                f"{self.query_aetitle}@{self.host}:{self.query_port}: the peer does not accept"
                " C-FIND (Study Root)"
            ) from None

    def _associate(
        self,
        contexts: list[PresentationContext],
        port: int = 0,
        called: str = "",
        ext_neg: list[Any] | None = None,
        handlers: list[Any] | None = None,
    ) -> tuple[AE, Association]:
        """An established association, or SendError with the reason (one line)."""
        port, called = port or self.port, called or self.called_aetitle
        where = f"{called}@{self.host}:{port}"
        ae = AE(ae_title=self.calling_aetitle)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout
        ae.connection_timeout = self.timeout
        listener = _Listener()
        tls_args = (self.tls.context, self.tls.server_name) if self.tls else None
        try:
            assoc = ae.associate(
                self.host,
                port,
                contexts=contexts,
                ae_title=called,
                evt_handlers=listener.handlers() + (handlers or []),
                tls_args=tls_args,
                ext_neg=ext_neg,
            )  # type: ignore[arg-type]
        except OSError:  # name resolution happens before pynetdicom's own error handling
            ae.shutdown()
            raise SendError(f"cannot connect to {where}: {self._diagnose(port)}") from None
        if assoc.is_established:
            _keep_responses_for_the_sender(assoc)
            return ae, assoc
        ae.shutdown()
        if listener.refusal:
            raise SendError(f"{where}: {listener.refusal}")
        if assoc.is_aborted and assoc.rejected_contexts and not assoc.accepted_contexts:
            raise _NoContexts()
        raise SendError(f"cannot connect to {where}: {self._diagnose(port)}")

    def _diagnose(self, port: int = 0) -> str:
        """Why pynetdicom could not associate (it only logs the socket error): try again by hand."""
        timeout = min(self.timeout, 10.0)  # pynetdicom already waited self.timeout
        try:
            with socket.create_connection((self.host, port or self.port), timeout=timeout) as sock:
                if self.tls:
                    with self.tls.context.wrap_socket(sock, server_hostname=self.tls.server_name):
                        pass
        except ConnectionRefusedError:
            return "connection refused"
        except TimeoutError:
            return f"no answer within {timeout:g} s"
        except socket.gaierror as exc:
            return f"unknown host: {exc.strerror}"
        except ssl.SSLCertVerificationError as exc:
            return f"TLS: the peer's certificate is not trusted: {exc.verify_message}"
        except ssl.SSLError as exc:
            return f"TLS handshake failed: {exc.reason or one_line(exc)}"
        except OSError as exc:
            return exc.strerror or one_line(exc)
        return "the peer closed the connection during association negotiation"

    @staticmethod
    def close(ae: AE, assoc: Association) -> None:
        """Release the association (if still up) and stop its AE."""
        try:
            if assoc.is_established:
                assoc.release()
        finally:
            ae.shutdown()

    # -- sending --------------------------------------------------------------------------

    def send_study(self, files: Sequence[Path], context: SendContext) -> SendResult:
        result = SendResult()
        instances = []
        for path in files:
            try:
                instances.append(read_instance(Path(path)))
            except _Unreadable as exc:
                result.failed.append((Path(path), str(exc)))
        started = time.monotonic()
        for contexts, batch in batches(instances):
            error = self._send_parallel(contexts, batch, result)
            if error:
                unsent = len(files) - result.sent - len(result.failed)
                result.error = f"{error}; {unsent} of {len(files)} instances not sent"
                break
        log.info(
            "study sent" if result.ok else "study not sent completely",
            extra={
                "destination": self.name,
                "peer": self.where,
                "study_uid": context.study_uid,
                "files": len(files),
                "sent": result.sent,
                "warnings": len(result.warnings),
                "failed": len(result.failed),
                "error": result.error,
                "associations": self._parallel(len(instances)),
                "seconds": round(time.monotonic() - started, 3),
            },
        )
        return result

    def _send_parallel(
        self, contexts: list[PresentationContext], batch: list[Instance], result: SendResult
    ) -> str:
        """``batch`` over up to ``associations`` associations at once (contiguous slices, so
        each series mostly goes over one); the first error text or ""."""
        n = self._parallel(len(batch))
        if n == 1:
            return self._send_batch(contexts, batch, result)
        size = -(-len(batch) // n)
        slices = [batch[i : i + size] for i in range(0, len(batch), size)]
        results = [SendResult() for _ in slices]
        with ThreadPoolExecutor(len(slices), thread_name_prefix="cstore") as pool:
            errors = list(
                pool.map(
                    lambda job: self._send_batch(copy.deepcopy(contexts), *job),
                    zip(slices, results, strict=True),
                )
            )
        for r in results:
            result.sent += r.sent
            result.warnings += r.warnings
            result.failed += r.failed
        return next((e for e in errors if e), "")

    def _parallel(self, instances: int) -> int:
        """How many associations to use for ``instances``."""
        return min(self.associations, max(1, instances // self.min_per_association))

    def _send_batch(
        self,
        contexts: list[PresentationContext],
        batch: list[Instance],
        result: SendResult,
        *,
        fast: bool = True,
    ) -> str:
        """Send ``batch`` over as few associations as the peer allows; the error text or "".
        Our own data loop (store_scu.py) sends every instance whose own transfer syntax the
        peer accepts; the rest (an uncompressed file the peer takes only in another
        uncompressed syntax) then go through pynetdicom, which re-encodes them."""
        pending = deque(batch)
        convert: list[Instance] = []
        without_progress = 0  # associations lost (or not re-established) in a row
        first = True
        while pending:
            try:
                session = self._open_fast(contexts) if fast else self._open_pynetdicom(contexts)
            except (_NoContexts, NoContexts):
                for inst in pending:
                    self._failed(result, inst, refusal(inst))
                return ""
            except SendError as exc:
                if first or without_progress >= self.reconnects:
                    return str(exc)
                without_progress += 1
                time.sleep(self.reconnect_delay * 2 ** (without_progress - 1))
                continue
            first = False
            done_before = len(batch) - len(pending)
            lost = True
            try:
                lost = session.store(pending, result, convert)
            finally:
                session.close(lost)
            if not lost:
                break
            without_progress = (
                0 if len(batch) - len(pending) > done_before else without_progress + 1
            )
            if without_progress > self.reconnects:
                return (
                    f"association with {self.where} lost {without_progress} times in a row,"
                    f" each time while sending {pending[0].path.name}"
                )
            log.warning(
                "association lost, reconnecting",
                extra={
                    "destination": self.name,
                    "peer": self.where,
                    "pending": len(pending),
                    "attempt": without_progress,
                },
            )
            if without_progress:  # no instance got through: give the peer a moment
                time.sleep(self.reconnect_delay * 2 ** (without_progress - 1))
        if convert:
            return self._send_batch(contexts, convert, result, fast=False)
        return ""

    def _open_fast(self, contexts: list[PresentationContext]) -> _FastSession:
        tls = (self.tls.context, self.tls.server_name) if self.tls else None
        try:
            assoc = StoreAssociation.open(
                self.host,
                self.port,
                self.calling_aetitle,
                self.called_aetitle,
                contexts,
                max_pdu=self.max_pdu,
                timeout=self.timeout,
                tls=tls,
            )
        except OSError:
            raise SendError(f"cannot connect to {self.where}: {self._diagnose()}") from None
        return _FastSession(self, assoc)

    def _open_pynetdicom(self, contexts: list[PresentationContext]) -> _PynetdicomSession:
        ae, assoc = self._associate(contexts)
        return _PynetdicomSession(self, ae, assoc)

    def _stored(self, result: SendResult, inst: Instance, status: int, comment: str) -> None:
        """Record the peer's answer for ``inst``."""
        outcome, text = store_status(status, comment)
        if outcome == "failure":
            self._failed(result, inst, text)
            return
        result.sent += 1
        if outcome == "warning":
            result.warnings.append(f"{inst.path.name}: {text}")
            log.warning(
                "stored with a warning",
                extra={"destination": self.name, "sop_uid": inst.sop_uid, "status": text},
            )

    def _failed(self, result: SendResult, inst: Instance, reason: str) -> None:
        result.failed.append((inst.path, reason))
        log.warning(
            "instance not stored",
            extra={
                "destination": self.name,
                "peer": self.where,
                "sop_uid": inst.sop_uid,
                "error": reason,
            },
        )

    # -- verification -----------------------------------------------------------------------

    def verify(self, study_uid: str, expected: Mapping[str, Sequence[str]]) -> Verification | None:
        if not self.verify_sends:
            return None
        from fionagw.send.verify import verify_study

        return verify_study(self, study_uid, expected)

    # -- check ----------------------------------------------------------------------------

    def check(self) -> str:
        started = time.monotonic()
        try:
            ae, assoc = self._associate([build_context(Verification)])
        except _NoContexts:
            raise SendError(
                f"{self.where}: the peer does not accept C-ECHO (Verification)"
            ) from None
        try:
            status = assoc.send_c_echo()
        finally:
            self.close(ae, assoc)
        if "Status" not in status:
            raise SendError(f"{self.where}: no answer to C-ECHO within {self.timeout:g} s")
        if int(status.Status) != 0:
            raise SendError(f"{self.where}: C-ECHO answered with status 0x{int(status.Status):04X}")
        ms = (time.monotonic() - started) * 1000
        return f"dicom {self.where}: C-ECHO OK in {ms:.0f} ms{' over TLS' if self.tls else ''}"


class _FastSession:
    """Our data loop on one association (store_scu.py)."""

    def __init__(self, dest: DicomDestination, assoc: StoreAssociation) -> None:
        self.dest, self.assoc = dest, assoc

    def store(self, pending: deque[Instance], result: SendResult, convert: list[Instance]) -> bool:
        """C-STORE the pending instances in order; True when the association was lost (the
        first pending instance is the one not confirmed). Instances that need re-encoding
        go to ``convert``."""
        while pending:
            inst = pending[0]
            context_id = self.assoc.context_for(inst.sop_class, inst.syntax)
            if context_id is None:
                pending.popleft()
                accepted = [UID(ts) for ts in self.assoc.accepted_syntaxes.get(inst.sop_class, [])]
                if not inst.syntax.is_compressed and any(
                    not ts.is_compressed and ts.is_little_endian == inst.syntax.is_little_endian
                    for ts in accepted
                ):
                    convert.append(inst)
                else:
                    self.dest._failed(result, inst, refusal(inst, accepted))
                continue
            try:
                with open(inst.path, "rb") as f:
                    offset = dataset_offset(f)
                    if offset is None:  # no preamble: pynetdicom reads it
                        pending.popleft()
                        convert.append(inst)
                        continue
                    status, comment = self.assoc.store(
                        context_id, inst.sop_class, inst.sop_uid, f, offset
                    )
            except OSError as exc:  # this file cannot be read: it fails alone
                pending.popleft()
                self.dest._failed(result, inst, f"cannot read: {exc.strerror or one_line(exc)}")
                continue
            except Lost as exc:
                log.info("association lost", extra={"peer": self.dest.where, "error": str(exc)})
                return True
            pending.popleft()
            self.dest._stored(result, inst, status, comment)
        return False

    def close(self, lost: bool) -> None:
        if lost:
            self.assoc.abort()
        else:
            self.assoc.release()


class _PynetdicomSession:
    """pynetdicom on one association: for instances it must re-encode."""

    def __init__(self, dest: DicomDestination, ae: AE, assoc: Association) -> None:
        self.dest, self.ae, self.assoc = dest, ae, assoc

    def store(self, pending: deque[Instance], result: SendResult, convert: list[Instance]) -> bool:
        assoc, dest = self.assoc, self.dest
        msg_id = 0
        while pending:
            inst = pending[0]
            how = how_to_send(assoc, inst)
            if isinstance(how, str):
                dest._failed(result, inst, how)
                pending.popleft()
                continue
            msg_id = msg_id % 65535 + 1
            try:
                dataset: Path | Dataset = how if how is not None else dcmread(inst.path)
            except Exception as exc:  # a broken file must fail alone, not stop the study
                dest._failed(result, inst, f"cannot decode to re-encode it: {one_line(exc)}")
                pending.popleft()
                continue
            try:
                status = assoc.send_c_store(dataset, msg_id=msg_id)
            except Exception as exc:  # noqa: BLE001 - RuntimeError: association gone; others: this file
                if not assoc.is_established:
                    return True
                dest._failed(result, inst, f"cannot send: {one_line(exc)}")
                pending.popleft()
                continue
            if "Status" not in status:  # aborted, timed out or an invalid answer: not confirmed
                if assoc.is_established:
                    assoc.abort()
                return True
            pending.popleft()
            dest._stored(
                result, inst, int(status.Status), str(status.get("ErrorComment", "") or "")
            )
        return False

    def close(self, lost: bool) -> None:
        self.dest.close(self.ae, self.assoc)
