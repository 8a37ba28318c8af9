"""The export types and the zip.

PURE   ``<participant>/<event>/<modality>_<series number>_<clean description>/<SOP UID>.dcm``,
       ``manifest.json`` (counts, SOP UIDs, SHA-256 of every file) and FIONA's ``fiona.txt``
NIFTI  dcm2niix per series (BIDS JSON sidecars, .bval/.bvec for diffusion) in
       ``sub-<participant>/ses-<event>/<datatype>/``
DICOM  the study as the research PACS has it, ``<study UID>/<SOP UID>.dcm``

The zip is written streamed (file by file, zip64 so it may pass 4 GB), with a password as an
AES-256 zip (pyzipper), under a temporary name renamed into place when complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pydicom

from fionagw.ops.perms import FILE_MODE, make_dirs
from fionagw.paths import safe_component

CHUNK = 1 << 20
STORED = (".gz", ".zip", ".jpg", ".png")
Progress = Callable[[int, int, int], None]  # (files done, files total, bytes done)


class BuildError(Exception):
    """An export that could not be built; str() is one line."""


def clean(text: str, dash: bool = False) -> str:
    """A file-name-safe piece: letters, digits, '-' (and '_' unless ``dash``)."""
    allowed = r"[^A-Za-z0-9-]+" if dash else r"[^A-Za-z0-9_-]+"
    out = re.sub(allowed, "-" if dash else "_", text.strip()).strip("_-")
    return out or "none"


def bids_label(text: str) -> str:
    """A BIDS entity label: letters and digits only."""
    return re.sub(r"[^A-Za-z0-9]+", "", text) or "none"


@dataclass
class Instance:
    path: Path
    sop_uid: str
    series_uid: str
    modality: str
    series_number: str
    description: str


@dataclass
class Tree:
    root: Path
    files: list[Path] = field(default_factory=list)  # everything under root to zip
    instances: int = 0
    series: int = 0


def read_instances(folder: Path) -> list[Instance]:
    out = []
    for path in sorted(folder.iterdir()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception as exc:  # a file the PACS sent that is not DICOM: the export fails
            raise BuildError(f"{path.name}: not a DICOM file ({type(exc).__name__})") from None
        out.append(
            Instance(
                path,
                str(ds.get("SOPInstanceUID", "")),
                str(ds.get("SeriesInstanceUID", "")),
                str(ds.get("Modality", "") or "OT"),
                str(ds.get("SeriesNumber", "") or "0"),
                str(ds.get("SeriesDescription", "") or ""),
            )
        )
    return out


def _by_series(instances: list[Instance]) -> dict[str, list[Instance]]:
    series: dict[str, list[Instance]] = {}
    for inst in instances:
        series.setdefault(inst.series_uid, []).append(inst)
    return series


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _note(root: Path, lines: dict[str, object]) -> Path:
    note = root / "fiona.txt"
    text = "This export was made by fionagw (FIONA's Exports).\n" + "".join(
        f"{k}: {v}\n" for k, v in lines.items()
    )
    note.write_text(text)
    return note


def build_pure(
    instances: list[Instance], root: Path, participant: str, event: str, about: dict[str, object]
) -> Tree:
    tree = Tree(root)
    manifest: dict[str, object] = {**about, "series": []}
    for uid, items in _by_series(instances).items():
        first = items[0]
        folder = (
            Path(safe_component(participant))
            / safe_component(event or "none")
            / f"{clean(first.modality)}_{clean(first.series_number)}_{clean(first.description)}"
        )
        make_dirs(root / folder)
        entries = []
        for inst in items:
            rel = folder / f"{safe_component(inst.sop_uid)}.dcm"
            os.replace(inst.path, root / rel)
            tree.files.append(root / rel)
            entries.append(
                {"file": str(rel), "sop_uid": inst.sop_uid, "sha256": _sha256(root / rel)}
            )
        manifest["series"].append(  # type: ignore[attr-defined]
            {
                "folder": str(folder),
                "series_uid": uid,
                "modality": first.modality,
                "series_number": first.series_number,
                "description": first.description,
                "count": len(entries),
                "instances": entries,
            }
        )
        tree.series += 1
        tree.instances += len(entries)
    manifest["count"] = tree.instances
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    tree.files += [root / "manifest.json", _note(root, {**about, "instances": tree.instances})]
    return tree


def build_dicom(
    instances: list[Instance], root: Path, study_uid: str, about: dict[str, object]
) -> Tree:
    tree = Tree(root)
    folder = root / safe_component(study_uid)
    make_dirs(folder)
    for inst in instances:
        target = folder / f"{safe_component(inst.sop_uid)}.dcm"
        os.replace(inst.path, target)
        tree.files.append(target)
    tree.instances = len(instances)
    tree.series = len(_by_series(instances))
    tree.files.append(_note(root, {**about, "instances": tree.instances}))
    return tree


_ANAT = (("flair", "FLAIR"), ("t1", "T1w"), ("mprage", "T1w"), ("t2", "T2w"), ("swi", "swi"))


def _datatype(description: str, has_bval: bool) -> tuple[str, str]:
    """(BIDS datatype folder, suffix) of a converted series."""
    d = description.lower()
    if has_bval:
        return "dwi", "dwi"
    if "bold" in d or "fmri" in d or "rest" in d:
        return "func", "bold"
    for key, suffix in _ANAT:
        if key in d:
            return "anat", suffix
    return "anat", "unknown"


def build_nifti(
    instances: list[Instance],
    root: Path,
    work: Path,
    participant: str,
    event: str,
    about: dict[str, object],
    dcm2niix: str = "dcm2niix",
) -> Tree:
    """dcm2niix per series; a series it cannot convert (no image, SR...) is listed in the note."""
    tree = Tree(root)
    sub, ses = f"sub-{bids_label(participant)}", f"ses-{bids_label(event or 'none')}"
    skipped = []
    for n, (_uid, items) in enumerate(_by_series(instances).items()):
        first = items[0]
        src, out = work / f"s{n}", work / f"o{n}"
        make_dirs(src)
        make_dirs(out)
        for inst in items:
            os.replace(inst.path, src / inst.path.name)
        try:
            run = subprocess.run(
                [dcm2niix, "-b", "y", "-z", "y", "-f", "series", "-o", str(out), str(src)],
                capture_output=True,
                text=True,
                timeout=3600,
            )
        except FileNotFoundError:
            raise BuildError(f"{dcm2niix} not found (apt install dcm2niix)") from None
        made = sorted(out.iterdir())
        if run.returncode != 0 or not any(p.name.endswith(".nii.gz") for p in made):
            skipped.append(f"{first.modality}_{first.series_number}_{clean(first.description)}")
            continue
        datatype, suffix = _datatype(first.description, any(p.suffix == ".bval" for p in made))
        folder = root / sub / ses / datatype
        make_dirs(folder)
        base = (
            f"{sub}_{ses}_acq-{bids_label(first.description)}_run-{bids_label(first.series_number)}"
        )
        for p in made:  # series.nii.gz, series.json, series.bval, series_e2.nii.gz ...
            rest = p.name[len("series") :]
            stem, dot, ext = rest.partition(".")
            target = folder / f"{base}{stem}_{suffix}{dot}{ext}"
            os.replace(p, target)
            tree.files.append(target)
        tree.series += 1
        tree.instances += len(items)
    if tree.series == 0:
        raise BuildError("dcm2niix converted no series of the study")
    tree.files.append(
        _note(root, {**about, "series": tree.series, "not converted": ", ".join(skipped) or "-"})
    )
    return tree


def write_zip(
    tree: Tree,
    target: Path,
    password: str = "",
    progress: Progress | None = None,
    level: int = 6,
) -> int:
    """Zip the tree's files (paths relative to its root) into ``target`` (deflate ``level``:
    1 fastest, 9 smallest); returns its size."""
    total, done_bytes = len(tree.files), 0
    part = target.with_name(target.name + ".part")
    make_dirs(target.parent)
    if password:
        import pyzipper

        zf: zipfile.ZipFile = pyzipper.AESZipFile(
            part,
            "w",
            compression=zipfile.ZIP_DEFLATED,
            compresslevel=level,
            allowZip64=True,
            encryption=pyzipper.WZ_AES,
        )
        zf.setpassword(password.encode())  # type: ignore[attr-defined]
        zf.setencryption(pyzipper.WZ_AES, nbits=256)  # type: ignore[attr-defined]
    else:
        zf = zipfile.ZipFile(
            part, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level, allowZip64=True
        )
    last = 0.0
    try:
        with zf:
            for i, path in enumerate(tree.files, 1):
                # already compressed (dcm2niix's .nii.gz): stored, not deflated again
                method = zipfile.ZIP_STORED if path.suffix in STORED else zipfile.ZIP_DEFLATED
                info_cls = getattr(zf, "zipinfo_cls", zipfile.ZipInfo)  # pyzipper: its own
                info = info_cls.from_file(path, str(path.relative_to(tree.root)))
                info.compress_type = method
                info._compresslevel = level  # what ZipFile.write sets
                # ZipFile.write copies in 8 KiB pieces: 1 MiB is several times faster
                with open(path, "rb") as src, zf.open(info, "w") as dest:
                    shutil.copyfileobj(src, dest, CHUNK)
                done_bytes += path.stat().st_size
                if progress and (time.monotonic() - last > 0.5 or i == total):
                    last = time.monotonic()
                    progress(i, total, done_bytes)
        os.chmod(part, FILE_MODE)
        os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return target.stat().st_size


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
