"""Studies for the Assign page written directly, as detectStudyArrival and populateIncoming leave them."""

from __future__ import annotations

import time

from fionagw.arrival.incoming import IncomingEntry
from fionagw.config import SiteConfig
from fionagw.ops.log import phi_hash
from fionagw.tracking.factory import open_tracker
from fionagw.tracking.records import Study

PROJECTS = """\
projects:
  DEMO:
    title: Demo project
    participant_id: '^DEMO[0-9]{3}$'
    events: [baseline, followup]
    destination: research-folder
  OTHER:
    title: Another project
    participant_id: '^OTH[0-9]{4}$'
    events: [visit1]
    destination: research-folder
"""


def seed(cfg: SiteConfig, n: int, assigned: dict[int, str] | None = None) -> list[str]:
    """n studies on the incoming list (newest = highest number) and in the tracker; study i is
    assigned to project assigned[i]. Written directly: what detectStudyArrival and populateIncoming
    leave behind."""
    now = int(time.time())
    cfg.paths.create()
    tracker = open_tracker(cfg)
    lines, uids = [], []
    for i in range(n):
        uid = f"1.2.826.0.1.3680043.10.{i}"
        uids.append(uid)
        info = {
            "accession": f"SEED{i:05d}",
            "called": "FIONA",
            "calling": f"MOD{i % 7}",
            "ip": "10.0.0.1",
            "study_date": "20250301",
            "study_time": "081500",
            "study_description": f"Seeded study {i}",
            "study_id": "1",
            "patient_id_hash": phi_hash(f"P{i}"),
            "modalities": ["MR"],
            "series_count": 4,
            "images": 4 * 176,
            "first_arrived": now - 600 - i,
            "series": [
                {
                    "uid": f"{uid}.{s}",
                    "number": s,
                    "description": f"series {s}",
                    "modality": "MR",
                    "num_files": 176,
                    "classify_type": ["MR", "T1"] if s == 1 else ["MR"],
                }
                for s in range(1, 5)
            ],
        }
        lines.append(IncomingEntry(now - 600 + i, uid, info).line())
        tracker.save_study(Study(uid, study_accession_number=f"SEED{i:05d}"), [])
        if assigned and i in assigned:
            tracker.request_transfer(
                uid,
                assigned[i],
                "DEMO001" if assigned[i] == "DEMO" else "OTH0001",
                "baseline" if assigned[i] == "DEMO" else "visit1",
            )
    cfg.paths.incoming_list.write_text("".join(line + "\n" for line in lines))
    tracker.close()
    return uids
