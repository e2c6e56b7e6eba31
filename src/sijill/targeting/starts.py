"""Starting targeting work, decided once for the API's routes and the pages: what each start
checks before its job is queued (the permission, the area inside the user's scope, the models
it names), and the private folder an upload waits in until its job has read it."""

import re
import secrets
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session

from sijill.core.errors import FieldError, InvalidInput
from sijill.core.settings import Settings
from sijill.registry.bulk.jobs import private_folder, save_upload, upload_name
from sijill.security.principal import Principal
from sijill.security.roles import Permission
from sijill.targeting.pmt_models import get_model
from sijill.targeting.service import resolve_area

MODEL_VERSION = r"^pmt-[0-9a-f]{16}$"


def check_run(session: Session, principal: Principal, area_code: str | None) -> None:
    """A scoring run (snapshot, PMT score, MPI, evaluation) in this area: refused now, as the
    job would refuse it, so that the user hears it from the form or the request."""
    principal.require(Permission.TARGETING_RUN)
    resolve_area(session, principal, area_code)


def check_models(session: Session, versions: Sequence[str]) -> None:
    """Each named PMT model exists (NotFound otherwise)."""
    for version in versions:
        if not re.fullmatch(MODEL_VERSION, version):
            raise InvalidInput(
                "pmt: a model version is pmt- and 16 hex digits",
                [FieldError("pmt", "not a model version")],
            )
        get_model(session, version)


def check_selection(coverage: float | None, budget: object | None) -> None:
    """An evaluation selects by a share of households or by a budget: one of the two."""
    if (coverage is None) == (budget is None):
        message = "give either a coverage or a budget"
        raise InvalidInput(message, [FieldError("coverage", message)])


@contextmanager
def upload_folder(settings: Settings) -> Iterator[Path]:
    """A private folder for a job's uploaded files, removed if the job does not start (the job
    removes it when it ends)."""
    folder = private_folder(settings.work_dir) / secrets.token_hex(16)
    folder.mkdir(mode=0o700)
    try:
        yield folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def keep_upload(folder: Path, stem: str, filename: str | None, data: BinaryIO) -> Path:
    """An uploaded table saved as `stem` with its own suffix (CSV, XLSX or Parquet)."""
    path = folder / f"{stem}{Path(upload_name(filename)).suffix}"
    save_upload(data, path)
    return path
