"""cron/fiona.crontab: fill in the paths and manage the processing user's crontab (Debian's cron).

Our lines go between two marker comments, so install/remove keep every other line of the
user's crontab, and a second install replaces ours instead of adding a copy. The marker names
the site, so several sites of one checkout can be installed side by side.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from fionagw.config import DEFAULT_CONFIG
from fionagw.paths import CHECKOUT, CRONTAB

TEMPLATE = CRONTAB
PLACEHOLDER = "@FIONA_HOME@"
_PROGRAM = re.compile(re.escape(PLACEHOLDER) + r"/bin/([A-Za-z][A-Za-z0-9]*)")
_REDIRECT = re.compile(r"\s*(?:\d?>>?|&>)\s*\S+(?:\s+2>&1)?\s*$")
_SLEEP = re.compile(r"^\s*sleep\s+(\d+)\s*;\s*")


def split_command(command: str) -> tuple[int, str]:
    """FIONA's ``sleep N;`` prefix as an offset of N seconds into the minute, and the command
    without it and without its output redirection."""
    offset = 0
    m = _SLEEP.match(command)
    if m:
        offset = int(m.group(1))
        command = command[m.end() :]
    return offset, _REDIRECT.sub("", command).strip()


class CronError(Exception):
    pass


def markers(site: str) -> tuple[str, str]:
    name = f"site {site}" if site else "default site"
    return (
        f"# >>> fionagw ({name}): managed by `fiona cron`; edits between these lines are replaced >>>",
        f"# <<< fionagw ({name}) <<<",
    )


def render(
    config_file: Path, site: str = "", home: Path = CHECKOUT, template: Path = TEMPLATE
) -> str:
    """The crontab text for this checkout, config and site (without markers)."""
    extra = ""
    if config_file.resolve() != DEFAULT_CONFIG.resolve():
        extra = " --config " + shlex.quote(str(config_file))
    home_text = shlex.quote(str(home))
    out = []
    for line in template.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#") and PLACEHOLDER in line:
            line = _PROGRAM.sub(lambda m: f"{PLACEHOLDER}/bin/{m.group(1)}{extra}", line)
            if site:
                redirect = _REDIRECT.search(line)
                cut = redirect.start() if redirect else len(line)
                line = f"{line[:cut]} {shlex.quote(site)}{line[cut:]}"
        out.append(line if line.lstrip().startswith("#") else line.replace(PLACEHOLDER, home_text))
    return "\n".join(out).rstrip("\n") + "\n"


@dataclass
class CronLine:
    schedule: str  # the five time fields
    command: str  # the shell command as cron runs it

    @property
    def bare_command(self) -> str:
        """The command without FIONA's ``sleep N;`` prefix and the output redirection."""
        return split_command(self.command)[1]


def job_lines(text: str) -> list[CronLine]:
    lines = []
    for raw in text.splitlines():
        s = raw.strip()
        if not s or s.startswith("#") or re.match(r"^[A-Za-z_][A-Za-z0-9_]*\s*=", s):
            continue
        parts = s.split(None, 5)
        if s.startswith("@"):
            lines.append(CronLine(parts[0], s.split(None, 1)[1]))
        elif len(parts) == 6:
            lines.append(CronLine(" ".join(parts[:5]), parts[5]))
    return lines


def programs(text: str) -> list[str]:
    """bin/ programs the crontab runs, in order, each once."""
    seen: list[str] = []
    for line in job_lines(text):
        m = re.search(r"/bin/([A-Za-z][A-Za-z0-9]*)", line.command)
        if m and m.group(1) not in seen:
            seen.append(m.group(1))
    return seen


def _crontab_cmd(user: str | None) -> list[str]:
    exe = shutil.which("crontab") or next(
        (p for p in ("/usr/bin/crontab", "/bin/crontab") if Path(p).exists()), None
    )
    if not exe:
        raise CronError("the crontab command is missing: on Debian run apt-get install cron")
    return [exe, *(["-u", user] if user else [])]


def read_crontab(user: str | None) -> str:
    r = subprocess.run([*_crontab_cmd(user), "-l"], capture_output=True, text=True)
    if r.returncode != 0:
        if "no crontab" in r.stderr:
            return ""
        raise CronError(f"crontab -l failed: {r.stderr.strip()}")
    return r.stdout


def write_crontab(user: str | None, text: str) -> None:
    r = subprocess.run([*_crontab_cmd(user), "-"], input=text, capture_output=True, text=True)
    if r.returncode != 0:
        raise CronError(f"crontab failed: {r.stderr.strip() or r.stdout.strip()}")


def strip_ours(text: str, site: str) -> str:
    begin, end = markers(site)
    out, inside = [], False
    for line in text.splitlines():
        if line.strip() == begin:
            inside = True
            continue
        if inside and line.strip() == end:
            inside = False
            continue
        if not inside:
            out.append(line)
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(out) + ("\n" if out else "")


def merged(current: str, ours: str, site: str) -> str:
    begin, end = markers(site)
    rest = strip_ours(current, site)
    sep = "\n" if rest else ""
    return f"{rest}{sep}{begin}\n{ours.rstrip(chr(10))}\n{end}\n"


def install(user: str | None, ours: str, site: str) -> str:
    text = merged(read_crontab(user), ours, site)
    write_crontab(user, text)
    return text


def remove(user: str | None, site: str) -> bool:
    current = read_crontab(user)
    rest = strip_ours(current, site)
    if rest == current:
        return False
    if rest.strip():
        write_crontab(user, rest)
    else:
        subprocess.run([*_crontab_cmd(user), "-r"], capture_output=True, text=True)
    return True
