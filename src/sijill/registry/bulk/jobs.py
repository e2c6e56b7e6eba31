"""The import as a job (kind "import", `sijill.jobs`): `sijill import` runs it in the
foreground, `POST /imports` in the background of the API after `receive_upload` has put the
uploaded file where the job will read it.

An upload gets a folder of its own in the private work folder (`settings.work_dir`), named at
random: the file under its own (cleaned) name, so rejects and the default source name read as
they would for `sijill import`, its mapping, and the rejects file the job writes. The file and
the mapping are deleted when the job ends, however it ends; the rejects stay for download.
"""

import contextlib
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sijill.core.errors import FieldError, InvalidInput
from sijill.core.files import TABLE_SUFFIXES
from sijill.core.settings import Settings
from sijill.jobs.context import JobContext
from sijill.jobs.kinds import job_kind
from sijill.registry.bulk.mapping import load_mapping
from sijill.registry.bulk.service import ImportReport, import_path
from sijill.security.principal import Principal
from sijill.security.roles import Permission

IMPORT = "import"
_UNSAFE = re.compile(r"[^\w.\- ]")


@dataclass(frozen=True)
class ImportParams:
    path: Path
    mapping: Path | None = None
    rejects: Path | None = None  # None: next to the input, as `sijill import` says
    source: str | None = None
    upload: Path | None = None  # an upload's own folder: its files go when the job ends


def _forget_upload(params: ImportParams) -> None:
    if params.upload is None:
        return
    shutil.rmtree(params.path.parent, ignore_errors=True)
    if params.mapping is not None:
        params.mapping.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        params.upload.rmdir()  # kept when it holds the rejects


def outcome(report: ImportReport) -> dict[str, Any]:
    """The figures of an import, as the job shows them: counts, never a row's content."""
    counts = report.counts
    return {
        "source": report.source,
        "households_read": report.households_read,
        "persons_read": report.persons_read,
        "households_added": counts.households_added,
        "persons_added": counts.persons_added,
        "households_present": counts.households_present,
        "persons_present": counts.persons_present,
        "rejected_rows": report.rejected_rows,
        "batches_committed": report.batches_committed,
        "ignored_columns": report.ignored_columns,
        "seconds": round(report.seconds, 1),
    }


@job_kind(IMPORT, Permission.HOUSEHOLD_IMPORT, cleanup=_forget_upload)
def run_import(ctx: JobContext, params: ImportParams) -> ImportReport:
    report = import_path(
        ctx.engine,
        ctx.settings,
        params.path,
        params.mapping,
        params.rejects,
        params.source,
        principal=ctx.principal,
        progress=ctx.progress,
        stage=ctx.stage,
        cancelled=ctx.cancelled,
        run=f"job {ctx.job_id}",
    )
    ctx.outcome = outcome(report)
    ctx.result_path = report.rejects_path
    if report.interrupted:
        ctx.stopped_early()
    return report


# --- uploads -------------------------------------------------------------------------------------


def upload_name(filename: str | None) -> str:
    """The uploaded file's own name, cleaned: no folders, only letters, digits, . - _ and
    spaces, and a suffix the importer reads."""
    name = re.split(r"[\\/]", filename or "")[-1].strip()
    name = _UNSAFE.sub("_", name).lstrip(". ")[-120:]
    suffix = Path(name).suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        shown = f"'{suffix}' files" if suffix else "a file without a suffix"
        message = f"cannot read {shown}; send a .csv, .xlsx or .parquet file"
        raise InvalidInput(message, [FieldError("file", message)])
    return name


def private_folder(folder: Path) -> Path:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o077:
        folder.chmod(0o700)
    return folder


def save_upload(data: BinaryIO, path: Path) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        shutil.copyfileobj(data, handle, 1 << 20)


def receive_upload(
    principal: Principal,
    settings: Settings,
    filename: str | None,
    data: BinaryIO,
    mapping: BinaryIO | None = None,
    source: str | None = None,
) -> ImportParams:
    """Keep an uploaded file (and its mapping, checked now) for an import job, as one who may
    import. Its size was capped as it arrived (settings.max_upload_bytes, the API's
    middleware); its content is checked by the job, which fails with the reason if it cannot
    be read. `data` is what Starlette spooled while receiving it (memory, then an unnamed
    temporary file, gone with the request): copied here, where the job can still read it."""
    principal.require(Permission.HOUSEHOLD_IMPORT)
    name = upload_name(filename)
    folder = private_folder(settings.work_dir) / secrets.token_hex(16)
    folder.mkdir(mode=0o700)
    try:
        (folder / "in").mkdir(mode=0o700)
        path = folder / "in" / name
        save_upload(data, path)
        mapping_path = None
        if mapping is not None:
            mapping_path = folder / "mapping.yaml"
            save_upload(mapping, mapping_path)
            try:
                load_mapping(mapping_path)
            except InvalidInput as error:
                raise InvalidInput(error.detail, [FieldError("mapping", error.detail)]) from None
            except (ValueError, TypeError, AttributeError, RecursionError):
                message = "mapping.yaml: not a mapping (see docs/import-mapping.md)"
                raise InvalidInput(message, [FieldError("mapping", message)]) from None
        return ImportParams(path, mapping_path, folder / "rejects.csv", source, folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
