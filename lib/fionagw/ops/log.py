"""Per-component JSON-lines logs under DATADIR/logs, rotated by size.

Log only what may leave the gateway: study/series/SOP UIDs, file paths, AE titles and
counts. Never patient names or IDs in clear text (hash them with :func:`phi_hash`). Every
handler set up here passes records through :class:`~fionagw.ops.log_filter.PhiFilter`, so an
exception's message (which may quote data) never reaches a line; see ops/log_filter.py.
"""

from __future__ import annotations

import hashlib
import json
import logging
import logging.handlers
import sys
import time

from fionagw.config import SiteConfig
from fionagw.ops.log_filter import PhiFilter, install_excepthooks

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonLinesFormatter(logging.Formatter):
    """One JSON object a line: time, level, component, message, plus any `extra=` fields."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        _PHI_FILTER.filter(record)  # also when this formatter is used without our handlers
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created))
            + f".{int(record.msecs):03d}",
            "level": record.levelname,
            "component": self.component,
            "pid": record.process,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


_PHI_FILTER = PhiFilter()


class _PlainFormatter(logging.Formatter):
    """``%(asctime)s <component> %(levelname)s %(message)s``, through the PHI filter."""

    def format(self, record: logging.LogRecord) -> str:
        _PHI_FILTER.filter(record)
        return super().format(record)


_HEAD_FIELDS = {"time", "level", "component", "message", "pid"}


def format_entry(line: str, fallback: str = "") -> str:
    """One JSON-lines entry for people: time, level, component[pid], message, then key=value.

    ``fallback`` names the component of a line that is not JSON (or has no component).
    """
    line = line.rstrip("\n")
    try:
        e = json.loads(line)
    except ValueError:
        return f"{fallback}: {line}" if fallback else line
    if not isinstance(e, dict):
        return line
    extra = " ".join(
        f"{k}={v if isinstance(v, str) and ' ' not in v else json.dumps(v, default=str)}"
        for k, v in e.items()
        if k not in _HEAD_FIELDS
    )
    head = (
        f"{e.get('time', '')} {e.get('level', ''):<7} "
        f"{e.get('component', fallback)}[{e.get('pid', '')}]"
    )
    text = f"{head} {e.get('message', '')}"
    return f"{text}  {extra}" if extra else text


class _ConsoleFormatter(logging.Formatter):
    """Records as `fiona logs` prints them (the JSON entry of ``component``, formatted)."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self.json = JsonLinesFormatter(component)

    def format(self, record: logging.LogRecord) -> str:
        return format_entry(self.json.format(record))


def console_handler(component: str, level: int = logging.WARNING) -> logging.Handler:
    """A handler for stderr, as `fiona logs` prints: `fiona run` shows its failures there too."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(_ConsoleFormatter(component))
    handler.addFilter(_PHI_FILTER)
    return handler


def setup_logging(cfg: SiteConfig, component: str, *, stderr: bool = False) -> logging.Logger:
    """Send the root logger to DATADIR/logs/<component><site>.log (and stderr if asked)."""
    cfg.paths.logs.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    handler = logging.handlers.RotatingFileHandler(
        cfg.paths.logfile(component),
        maxBytes=cfg.logging.max_bytes,
        backupCount=cfg.logging.backups,
        encoding="utf-8",
    )
    handler.setFormatter(JsonLinesFormatter(component))
    handler.addFilter(_PHI_FILTER)
    root.addHandler(handler)
    if stderr:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(_PlainFormatter(f"%(asctime)s {component} %(levelname)s %(message)s"))
        console.addFilter(_PHI_FILTER)
        root.addHandler(console)
    root.setLevel(cfg.logging.level)
    # pynetdicom logs every association at INFO, the pixel codecs their plugins at DEBUG on
    # every start: keep their noise at WARNING.
    for library in ("pynetdicom", "pylibjpeg", "libjpeg", "openjpeg", "PIL"):
        logging.getLogger(library).setLevel(logging.WARNING)
    quiet_pydicom()
    # a library's warning would go to stderr, a daemon's start log, past the filter
    logging.captureWarnings(True)
    logger = logging.getLogger(f"fionagw.{component}")
    install_excepthooks(logger, component)  # logged with its frames, printed as one safe line
    return logger


def quiet_pydicom() -> None:
    """pydicom's value warnings quote the value ("Invalid value for VR DA: '19610714'"): a birth
    date or name in a log. Reading never validates values here; real errors still raise."""
    import warnings

    from pydicom import config as pydicom_config

    pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE
    logging.getLogger("pydicom").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"pydicom\..*")


def phi_hash(value: str) -> str:
    """SHA-256 hex of an identifying value, as FIONA stores patient name and ID."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()
