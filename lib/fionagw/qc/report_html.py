"""The report as a standalone HTML page (its own CSS, no script: it is also downloaded)."""

from __future__ import annotations

from html import escape
from typing import Any

from fionagw.qc.report_text import sections

CSS = (
    "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;"
    "margin-bottom:1.5em}td,th{border:1px solid #bbb;padding:4px 8px;text-align:left;"
    "vertical-align:top;white-space:pre-wrap}th{background:#eee}.fail{color:#a00;"
    "font-weight:bold}.pass{color:#070}"
)


def _cell(value: str) -> str:
    cls = {"fail": "fail", "pass": "pass"}.get(value, "")
    return f'<td class="{cls}">{escape(value)}</td>' if cls else f"<td>{escape(value)}</td>"


def report_html(report: dict[str, Any]) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{escape(report['title'])}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(report['title'])}</h1>",
    ]
    for heading, columns, rows in sections(report):
        parts.append(f"<h2>{escape(heading)}</h2>")
        if not rows:
            parts.append("<p>(none)</p>")
            continue
        parts.append("<table>")
        if any(columns):
            parts.append("<tr>" + "".join(f"<th>{escape(c)}</th>" for c in columns) + "</tr>")
        for row in rows:
            parts.append("<tr>" + "".join(_cell(v) for v in row) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
