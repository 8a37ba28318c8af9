"""The report as a PDF (reportlab's platypus: headings and tables that wrap)."""

from __future__ import annotations

import io
from html import escape
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from fionagw.qc.report_text import sections


def report_pdf(report: dict[str, Any]) -> bytes:
    styles = getSampleStyleSheet()
    cell = styles["BodyText"].clone("cell", fontSize=8, leading=10)
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=landscape(A4),
        title=report["title"],
        leftMargin=1.5 * cm,
        rightMargin=1.5 * cm,
        topMargin=1.5 * cm,
        bottomMargin=1.5 * cm,
    )
    story: list[Any] = [Paragraph(escape(report["title"]), styles["Title"])]
    for heading, columns, rows in sections(report):
        story.append(Paragraph(escape(heading), styles["Heading2"]))
        if not rows:
            story.append(Paragraph("(none)", styles["BodyText"]))
            continue
        data = [[Paragraph(escape(v).replace("\n", "<br/>"), cell) for v in row] for row in rows]
        if any(columns):
            data.insert(0, [Paragraph(f"<b>{escape(c)}</b>", cell) for c in columns])
        width = doc.width / max(1, len(data[0]))
        table = Table(data, colWidths=[width] * len(data[0]), repeatRows=1 if any(columns) else 0)
        table.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
                + ([("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey)] if any(columns) else [])
            )
        )
        story += [table, Spacer(1, 0.4 * cm)]
    doc.build(story)
    return out.getvalue()
