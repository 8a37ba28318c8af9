"""Keep values read from DICOM files out of every log line, tracebacks included.

An exception's text often quotes the data that caused it (pydicom: "Instead received
b'DOE^JOHN' ..."), so a traceback of an unexpected exception can carry a patient ID into a
log. Every handler that :func:`fionagw.ops.log.setup_logging` installs goes through
:class:`PhiFilter`, which

* replaces the traceback by its frames (file, line, function: no source text, no locals) and
  the exception's type, withholding its message, unless the type is one of the project's own
  errors whose messages are written to hold no values (:data:`PHI_FREE_ERRORS`); OSError keeps
  its errno name (a full disk must stay visible) without the file name;
* as defence in depth, redacts what looks like a value from data in the message and in the
  ``extra=`` fields: pydicom's element reprs, bytes literals, quoted values after "value",
  person names (``Family^Given``) and non-conformant UIDs (``1.2.DOE``, in paths too); a UID
  field (``study_uid``, ...) that is no valid UID is logged as its hash.

:func:`safe_exception_text` and :func:`exception_message` give the same safe text for code
that reports an exception elsewhere (a reason file, a job's last run, a start failure);
:func:`install_excepthooks` (the launcher, then setup_logging) makes an uncaught exception one
safe line on stderr and a filtered log entry.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

# Qualified names of the project's errors whose messages name tags, offsets, files, config
# keys or rule ids, never a value from a DICOM file (subclasses count too). Names rather than
# imports: this module is imported before any of them.
PHI_FREE_ERRORS = frozenset(
    {
        "fionagw.config.errors.ConfigError",
        "fionagw.classify.rules.RulesError",
        "fionagw.classify.series.NotDicomError",
        "fionagw.dicom.errors.CodecError",
        "fionagw.organize.series_json.SeriesJSONError",
        "fionagw.organize.processor.WriterLockHeld",
        "fionagw.ops.schedule.ScheduleError",
        "fionagw.ops.crontab.CronError",
        "fionagw.ops.gateway.StartError",
    }
)
WITHHELD = "<message withheld: may quote data>"
REDACTED = "<redacted>"

_VRS = (
    "AE|AS|AT|CS|DA|DS|DT|FL|FD|IS|LO|LT|OB|OD|OF|OL|OV|OW|PN|SH|SL|SQ|SS|ST|SV|TM|UC|UI|UL|UN"
    "|UR|US|UT|UV"
)
_TOKEN = re.compile(r"[^\s'\"=:,;()\[\]{}]+")
_NAME = re.compile(r"[^\W\d_]\^")


def _name_token(match: re.Match[str]) -> str:
    return REDACTED if _NAME.search(match.group()) else match.group()


def _has(*needles: str) -> Callable[[str], bool]:
    return lambda text: any(n in text for n in needles)


# (a quick test without which the pattern cannot match, pattern, replacement): the test keeps
# the filter at a few microseconds a record, as most lines hold none of these
_PATTERNS = (
    # pydicom's element repr: "(0010,0010) Patient's Name  PN: 'DOE^JOHN'" -> keep tag and VR
    (
        _has("("),
        re.compile(
            rf"(\(\s*[0-9A-Fa-f]{{4}}\s*,\s*[0-9A-Fa-f]{{4}}\s*\)[^\n:]*?\b(?:{_VRS})\s*:)[^\n]*"
        ),
        rf"\1 {REDACTED}",
    ),
    # bytes literals are raw bytes of a file
    (_has("b'", 'b"'), re.compile(r"""\bb(['"])(?:\\.|(?!\1).)*\1"""), f"b'{REDACTED}'"),
    # "Invalid value for VR DA: '19610714'", "value 'x' is not ..."
    (
        _has("alue", "ALUE"),
        re.compile(r"""(?i)(\bvalues?\b[^'"\n]{0,40}?)(['"])(?:\\.|(?!\2).)*\2"""),
        rf"\1'{REDACTED}'",
    ),
    # person names as DICOM writes them: Family^Given[^Middle...], the whole token
    (_has("^"), _TOKEN, _name_token),
    # a non-conformant UID (letters after a UID root: "1.2.DOEJOHN"), also inside a path; the
    # names the gateway gives files (<UID>.json, .tgz, ...) are kept. Matches start only where
    # a UID starts (not after "<digit>."), and nothing backtracks: linear in the text.
    (
        re.compile(r"\d\.\d+\.?[A-Za-z]").search,
        re.compile(
            r"(?<![0-9A-Za-z-])(?<!\d\.)(\d++(?:\.\d++)++\.?+)"
            r"(?!(?:json|tgz|md5sum|reason|log|lock|pid|info|seen|dcm|tmp)(?![0-9A-Za-z_-]))"
            r"[A-Za-z][0-9A-Za-z._-]*+"
        ),
        rf"\1{REDACTED}",
    ),
)
# extra= fields that hold a UID: a value that is not a conformant UID (digits and dots, at most
# 64 characters) is data of any kind, and is logged as a hash
_UID_KEYS = frozenset({"study", "series", "sop", "uid", "study_uid", "series_uid", "sop_uid"})
_CONFORMANT_UID = re.compile(r"[0-9]+(?:\.[0-9]+)*")


def redact(text: str) -> str:
    """``text`` with what looks like a value from data replaced by ``<redacted>``."""
    for test, pattern, replacement in _PATTERNS:
        if test(text):
            text = pattern.sub(replacement, text)
    return text


def is_phi_free(exc: BaseException) -> bool:
    """Whether ``exc`` is one of the project's errors whose message holds no data values."""
    return any(f"{c.__module__}.{c.__qualname__}" in PHI_FREE_ERRORS for c in type(exc).__mro__)


def _type_name(exc: BaseException) -> str:
    cls = type(exc)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def _message(exc: BaseException) -> str:
    """What may be said of ``exc`` besides its type (nothing, for most exceptions)."""
    if is_phi_free(exc):
        return redact(str(exc))
    if isinstance(exc, OSError) and exc.errno is not None:  # the file name stays out
        return f"[Errno {exc.errno} {errno.errorcode.get(exc.errno, '?')}]"
    return WITHHELD


_PACKAGE = str(Path(__file__).resolve().parents[1])  # lib/fionagw


def _where(tb: TracebackType | None) -> traceback.FrameSummary | None:
    """The innermost frame in fionagw's code (where our code met the exception), else the
    innermost frame."""
    frames = traceback.extract_tb(tb) if tb is not None else []
    ours = [f for f in frames if f.filename.startswith(_PACKAGE)]
    return (ours or frames or [None])[-1]


def safe_exception_text(exc: BaseException) -> str:
    """One line: the exception's type, what may be said of it, and where fionagw's code met
    it (file, line, function)."""
    text = f"{_type_name(exc)}: {_message(exc)}"
    frame = _where(exc.__traceback__)
    if frame is not None:
        text += f" (at {frame.filename}:{frame.lineno} in {frame.name})"
    return text


def exception_message(exc: BaseException) -> str:
    """What to tell a person of ``exc`` outside a log (a start failure, a job's outcome): the
    message of the project's PHI-free errors, else :func:`safe_exception_text`."""
    return redact(str(exc)) if is_phi_free(exc) else safe_exception_text(exc)


def _frames(tb: TracebackType | None) -> list[str]:
    return [
        f'  File "{f.filename}", line {f.lineno}, in {f.name}'
        for f in (traceback.extract_tb(tb) if tb is not None else [])
    ]


def format_exception_safe(exc: BaseException) -> str:
    """A traceback as Python prints it, chained exceptions included, without source lines,
    locals or (unless :func:`is_phi_free`) the messages."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        block = ["Traceback (most recent call last):", *_frames(current.__traceback__)]
        block.append(f"{_type_name(current)}: {_message(current)}")
        parts.append("\n".join(block))
        if current.__cause__ is not None:
            parts.append("\nThe above exception was the direct cause of the following exception:\n")
            current = current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            parts.append("\nDuring handling of the above exception, another exception occurred:\n")
            current = current.__context__
        else:
            current = None
    # Python prints the innermost cause first
    return "\n".join(reversed(parts))


_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}


def _is_uid_key(key: str) -> bool:
    return key in _UID_KEYS or key.endswith("_uid")


def _uid_field(value: str) -> str:
    if len(value) <= 64 and _CONFORMANT_UID.fullmatch(value):
        return value
    digest = hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:16]
    return f"<non-conformant UID sha256:{digest}>"


class PhiFilter(logging.Filter):
    """Rewrites every record it passes so no handler can put a data value into a line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_phi_checked", False):  # one record reaches several handlers
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: say so, without the arguments
            message = f"{record.msg!s} <arguments withheld: they did not format>"
        record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = format_exception_safe(record.exc_info[1])
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        record.exc_info = None
        for key, value in list(vars(record).items()):
            if key not in _RESERVED and not key.startswith("_"):
                if isinstance(value, BaseException):
                    setattr(record, key, safe_exception_text(value))
                elif isinstance(value, str):
                    setattr(record, key, _uid_field(value) if _is_uid_key(key) else redact(value))
        record._phi_checked = True
        return True


def install_excepthooks(logger: logging.Logger | None = None, program: str = "") -> None:
    """An exception nobody caught is printed as one safe line (``<program>: unexpected error:
    <type> (at file:line in function)``) instead of Python's traceback with its message, and,
    once the program's log is set up, logged with its frames through ``logger``."""
    import threading

    name = program or (logger.name if logger else "fionagw")

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, exc, tb)
            return
        if logger is not None:
            logger.critical("uncaught exception", exc_info=(kind, exc, tb))
        print(f"{name}: unexpected error: {safe_exception_text(exc)}", file=sys.stderr)

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None:
            return
        if logger is not None:
            logger.critical(
                "uncaught exception in a thread",
                exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
                extra={"in_thread": getattr(args.thread, "name", "")},
            )
        else:
            print(
                f"{name}: unexpected error: {safe_exception_text(args.exc_value)}", file=sys.stderr
            )

    sys.excepthook = hook
    threading.excepthook = thread_hook
