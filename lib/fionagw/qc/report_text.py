"""The report as sections of rows (shared by the TXT, HTML and PDF formats) and as plain text."""

from __future__ import annotations

from typing import Any

Section = tuple[str, list[str], list[list[str]]]  # (heading, column names, rows)


def sections(report: dict[str, Any]) -> list[Section]:
    study = report["study"]
    out: list[Section] = [
        (
            "Study",
            ["", ""],
            [
                ["Description", study["description"] or "(none)"],
                ["Series, images", f"{study['series']}, {study['images']}"],
                ["Age, sex", f"{study['age']}, {study['sex']}"],
                ["QC", f"{report['qc']['state']} (checked {report['qc']['checked']})"],
                ["Report made", report["made"]],
            ],
        ),
        (
            "Series",
            ["No.", "Description", "Modality", "Images", "ClassifyType", "Transfer syntaxes"],
            [
                [
                    s["number"],
                    s["description"],
                    s["modality"],
                    str(s["images"]),
                    ", ".join(s["classify_type"]),
                    ", ".join(s["transfer_syntaxes"]),
                ]
                for s in report["series"]
            ],
        ),
    ]
    for e in report["qc"]["evaluations"]:
        rows = []
        for c in e["checks"]:
            rows.append(
                [
                    c["name"] + (" (gate)" if c["gate"] else ""),
                    c["status"],
                    c["summary"] + "".join(f"\n- {d}" for d in c["details"][:20]),
                ]
            )
        out.append((f"QC for {e['project']}: {e['state']}", ["Check", "Result", "Findings"], rows))
    out.append(
        (
            "Bypasses",
            ["Project", "Checks", "By", "When", "Reason"],
            [
                [b["project"], ", ".join(b["checks"]), b["user"], b["at"], b["reason"]]
                for b in report["bypasses"]
            ],
        )
    )
    for project, d in report["deidentification"].items():
        rows = [[k.replace("_", " "), _text(v)] for k, v in d.items()]
        out.append((f"De-identification for {project}", ["", ""], rows))
    out.append(
        (
            "Deliveries",
            ["Project", "Participant", "Event", "State", "Sent", "Verified", "Reason"],
            [
                [
                    d.get("project", ""),
                    d.get("participant", ""),
                    d.get("event", ""),
                    d.get("state", d.get("error", "")),
                    d.get("sent", ""),
                    d.get("verified", ""),
                    d.get("reason", ""),
                ]
                for d in report["deliveries"]
            ],
        )
    )
    return out


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def report_text(report: dict[str, Any]) -> str:
    lines = [report["title"], "=" * len(report["title"]), ""]
    for heading, columns, rows in sections(report):
        lines += [heading, "-" * len(heading)]
        if not rows:
            lines.append("(none)")
        for row in rows:
            if any(columns):
                lines.append(
                    "; ".join(f"{c}: {v}" if c else v for c, v in zip(columns, row, strict=True))
                )
            else:
                lines.append(f"{row[0]}: {row[1]}")
        lines.append("")
    return "\n".join(lines)
