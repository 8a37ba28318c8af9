"""The one reader of secret files (REDCap tokens, de-identification keys, the heartbeat token):
a regular file only its owner can read; every problem one line naming the file, never the
secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fionagw.config import (
    ConfigError,
    SecretFileMissing,
    SecretsError,
    load_secrets,
    read_secret_file,
    read_secret_line,
)

SECRET = "0123456789abcdef0123456789abcdef"


def _secret(tmp_path: Path, content: str, mode: int = 0o600, name: str = "secret") -> Path:
    path = tmp_path / name
    path.write_text(content)
    path.chmod(mode)
    return path


def test_private_file_is_read(tmp_path: Path) -> None:
    path = _secret(tmp_path, SECRET + "\n")
    assert read_secret_file(path) == (SECRET + "\n").encode()
    assert read_secret_line(path) == SECRET
    assert read_secret_line(_secret(tmp_path, f"  {SECRET}  \nsecond line\n", name="t")) == SECRET
    path.chmod(0o400)
    assert read_secret_file(path)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = _secret(tmp_path, SECRET, mode)
    with pytest.raises(SecretsError) as err:
        read_secret_file(path, "read the heartbeat token")
    assert str(err.value) == (
        f"{path}: mode {mode:04o} lets group or others read the heartbeat token; "
        f"run: chmod 600 {path}"
    )
    assert isinstance(err.value, ConfigError) and err.value.key == ""


def test_missing_link_folder_and_empty(tmp_path: Path) -> None:
    with pytest.raises(SecretFileMissing, match="gone: file not found$"):
        read_secret_file(tmp_path / "gone")
    link = tmp_path / "link"
    link.symlink_to(_secret(tmp_path, SECRET))
    with pytest.raises(SecretsError) as err:  # a link could point anywhere: not followed
        read_secret_file(link)
    assert str(err.value).startswith(f"{link}: cannot read: ")
    folder = tmp_path / "folder"
    folder.mkdir(mode=0o700)
    with pytest.raises(SecretsError, match="folder: not a regular file$"):
        read_secret_file(folder)
    with pytest.raises(SecretsError, match="empty: empty$"):
        read_secret_file(_secret(tmp_path, "", name="empty"))
    with pytest.raises(SecretsError, match="blank: empty$"):
        read_secret_line(_secret(tmp_path, "\n  \n", name="blank"))


def test_secrets_file_is_parsed(tmp_path: Path) -> None:
    data = {"tokens": {"Incoming": SECRET}, "deid_keys": {"P": "passphrase"}}
    assert load_secrets(_secret(tmp_path, json.dumps(data), name="secrets.json")) == data


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"tokens": {"Incoming": "' + SECRET + '"', "invalid JSON at line 1 column"),
        (f'["{SECRET}"]', 'expected an object with a "tokens" object'),
    ],
)
def test_bad_secrets_file_never_shows_the_secret(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = _secret(tmp_path, content, name="secrets.json")
    with pytest.raises(SecretsError) as err:
        load_secrets(path)
    assert str(err.value).startswith(f"{path}: {problem}") and SECRET not in str(err.value)
    path.chmod(0o644)
    with pytest.raises(SecretsError, match="mode 0644 lets group or others access the secrets"):
        load_secrets(path)
