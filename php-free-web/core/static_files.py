"""One ``/static/<file>`` URL space (endpoint ``static``) over the shared files and each
application's own ``static/`` folder, so a page links its files the same way wherever they live.
File names are unique across the folders: a clash is an error when the app is built."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from flask import Flask, Response, abort, send_from_directory
from werkzeug.exceptions import NotFound


def install_static(app: Flask, folders: Sequence[Path]) -> None:
    folders = [f for f in folders if f.is_dir()]
    _check_unique(folders)

    def static(filename: str) -> Response:
        for folder in folders:
            try:
                return send_from_directory(folder, filename)
            except NotFound:
                continue
        abort(404)

    app.add_url_rule("/static/<path:filename>", endpoint="static", view_func=static)


def _check_unique(folders: Sequence[Path]) -> None:
    seen: dict[str, Path] = {}
    for folder in folders:
        for path in folder.rglob("*"):
            name = path.relative_to(folder).as_posix()
            if path.is_file() and seen.setdefault(name, folder) != folder:
                raise ValueError(f"static file {name} is in both {seen[name]} and {folder}")
