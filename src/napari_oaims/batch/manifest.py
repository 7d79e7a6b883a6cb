"""The jobs of a batch: a manifest (CSV with the columns ``image,seeds,name``), checked up front.

A manifest is rejected as a whole, before any work starts, when it lacks a column, names a file
type the readers do not take, or gives two jobs one name (their outputs would collide). Files
that are missing or damaged are not checked here: such a job fails on its own and the others
run (see :func:`napari_oaims.batch.propagate_many`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: Manifest columns, in order.
COLUMNS = ("image", "seeds", "name")
#: Image file types (a ``.zarr`` folder may be plain Zarr or OME-Zarr).
IMAGE_SUFFIXES = (".tif", ".tiff", ".npy", ".zarr")
#: Seed file types: a label volume, or a napari-oaims session folder (its accepted objects).
SEED_SUFFIXES = IMAGE_SUFFIXES + (".oaims.zarr",)
#: Output folder suffix of a job.
OUTPUT_SUFFIX = ".ome.zarr"
_BAD_NAME_CHARS = set('/\\:*?"<>|')


@dataclass(frozen=True)
class Job:
    """One volume to propagate: ``image`` and ``seeds`` paths (absolute) and the output ``name``.

    ``row`` is the job's line in the manifest (1 = the first line after the header).
    """

    image: str
    seeds: str
    name: str
    row: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def file_kind(path: str | Path) -> str | None:
    """The suffix that decides how ``path`` is read (``".oaims.zarr"`` before ``".zarr"``), or None."""
    name = str(path).rstrip("/\\").lower()
    for suffix in (".oaims.zarr", ".ome.zarr", ".zarr", ".tiff", ".tif", ".npy"):
        if name.endswith(suffix):
            return ".zarr" if suffix == ".ome.zarr" else suffix
    return None


def _check_name(name: str, where: str) -> str:
    name = name.strip()
    if not name:
        raise ValueError(f"{where}: the name is empty")
    if name in (".", "..") or name.startswith(".") or _BAD_NAME_CHARS & set(name):
        raise ValueError(f'{where}: name {name!r} is not a plain file name (no leading dot, no / \\ : * ? " < > |)')
    return name


def _resolve(value: str, base: Path | None) -> str:
    p = Path(value.strip()).expanduser()
    if not p.is_absolute() and base is not None:
        p = base / p
    return str(p.absolute())


def read_manifest(jobs: str | Path | Iterable[Mapping[str, Any]]) -> list[Job]:
    """The jobs of a manifest, checked.

    Parameters
    ----------
    jobs
        A CSV file with a header line holding the columns ``image``, ``seeds`` and ``name`` (in
        any order; more columns are ignored; relative paths are relative to the CSV's folder),
        or an iterable of mappings with those keys (relative paths: to the working directory),
        or a list of :class:`Job`.

    Returns
    -------
    list of Job
        One per row, in order.

    Raises
    ------
    FileNotFoundError
        The CSV file does not exist.
    ValueError
        The file is not CSV text (binary, NUL bytes), a column is missing, a row lacks a value, a
        file type is not one the readers take, a name is not a plain file name, or two jobs share
        a name. The message names the file and the row.
    """
    base: Path | None = None
    if isinstance(jobs, (str, Path)):
        path = Path(jobs)
        if not path.is_file():
            raise FileNotFoundError(f"no such manifest: {path}")
        base = path.absolute().parent
        try:
            with path.open(newline="", encoding="utf-8-sig") as fh:
                text = fh.read()
            if "\0" in text:
                raise csv.Error("it holds NUL bytes")
            reader = csv.DictReader(io.StringIO(text, newline=""))
            header = [h.strip() for h in (reader.fieldnames or [])]
            rows = [{(k or "").strip(): (v or "") for k, v in r.items()} for r in reader]
        except (UnicodeDecodeError, csv.Error) as err:
            raise ValueError(
                f"manifest {path} is not a UTF-8 CSV text file ({err}); save it as CSV text with the header "
                f"line {','.join(COLUMNS)}"
            ) from None
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise ValueError(
                f"manifest {path} lacks the column(s) {missing}: it needs a header line with "
                f"{','.join(COLUMNS)} (got {header or 'no header'})"
            )
        where = str(path)
    else:
        rows = [j.to_dict() if isinstance(j, Job) else dict(j) for j in jobs]
        where = "jobs"
        for i, r in enumerate(rows, 1):
            missing = [c for c in COLUMNS if c not in r]
            if missing:
                raise ValueError(f"{where} row {i} lacks {missing}: each job needs {', '.join(COLUMNS)}")
    out: list[Job] = []
    seen: dict[str, int] = {}
    for i, r in enumerate(rows, 1):
        here = f"{where} row {i}"
        values = {c: str(r.get(c) or "").strip() for c in COLUMNS}
        if not any(values.values()):
            continue  # a blank line
        for c in ("image", "seeds"):
            if not values[c]:
                raise ValueError(f"{here}: the {c} column is empty")
        if file_kind(values["image"]) not in IMAGE_SUFFIXES:
            raise ValueError(
                f"{here}: unknown image file type {values['image']!r}: use {', '.join(IMAGE_SUFFIXES)} "
                "(a .zarr folder may be OME-Zarr)"
            )
        if file_kind(values["seeds"]) not in SEED_SUFFIXES:
            raise ValueError(
                f"{here}: unknown seeds file type {values['seeds']!r}: use a label volume "
                f"({', '.join(IMAGE_SUFFIXES)}) or a .oaims.zarr session"
            )
        name = _check_name(values["name"], here)
        if name.lower() in seen:
            raise ValueError(
                f"{here}: duplicate name {name!r} (also row {seen[name.lower()]}): each job writes "
                f"<name>{OUTPUT_SUFFIX}, so names must be unique"
            )
        seen[name.lower()] = i
        out.append(Job(_resolve(values["image"], base), _resolve(values["seeds"], base), name, i))
    if not out:
        raise ValueError(f"{where} holds no jobs")
    return out
