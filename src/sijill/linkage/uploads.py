"""An outside list uploaded to `POST /linkage/link`, kept for its job.

As for an import (`registry.bulk.jobs.receive_upload`): the upload gets a private folder of its
own in the work folder, named at random, holding the list under its own (cleaned) name, its
mapping (checked now, with the list's own columns), and the report of unmatched lines the job
writes. The list and the mapping go when the job ends (`linkage.jobs`); the report stays for
download (`/jobs/{id}/rejects`).
"""

import secrets
import shutil
from datetime import date
from typing import Any, BinaryIO

from sijill.core.errors import FieldError, InvalidInput
from sijill.core.settings import Settings
from sijill.linkage.jobs import LinkParams
from sijill.linkage.lists import LIST_COLUMNS
from sijill.registry.bulk.jobs import private_folder, save_upload, upload_name
from sijill.registry.bulk.mapping import load_mapping
from sijill.security.principal import Principal
from sijill.security.roles import Permission


def _refused(field: str, message: str) -> InvalidInput:
    return InvalidInput(message, [FieldError(field, message)])


def receive_list(
    principal: Principal,
    settings: Settings,
    filename: str | None,
    data: BinaryIO,
    *,
    kind: str,
    mapping: BinaryIO | None = None,
    model: dict[str, Any] | None = None,
    threshold: float | None = None,
    as_of: date | None = None,
) -> LinkParams:
    principal.require(Permission.LINKAGE_RUN)
    if kind not in LIST_COLUMNS:
        raise _refused("kind", f"kind must be one of {', '.join(LIST_COLUMNS)}")
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
                load_mapping(mapping_path, extra=LIST_COLUMNS[kind])
            except InvalidInput as error:
                raise _refused("mapping", error.detail) from None
            except (ValueError, TypeError, AttributeError, RecursionError):
                raise _refused(
                    "mapping", "mapping.yaml: not a mapping (see docs/import-mapping.md)"
                ) from None
        return LinkParams(
            path,
            kind,
            name,
            mapping_path,
            model,
            threshold,
            as_of,
            folder / "unmatched.csv",
            folder,
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
