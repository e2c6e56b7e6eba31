"""Running a program from its page: the spec of its latest run (or a new version's file), the
day, an area of the user's scope, the kind and a dry run, checked and started as
`POST /programs/runs` starts them (`run_area`, `check_spec`, the same job), then the job's page.

The form is part of the program's page (`pages_programs.program_page`); a refused spec is shown
there, with its place in the file, and nothing starts."""

import secrets
import shutil
from datetime import date
from typing import Annotated, Any

from fastapi import Depends, File, Form, Path, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from sijill.core.clock import utcnow
from sijill.core.errors import InvalidInput
from sijill.core.i18n import N_, gettext
from sijill.core.ids import format_id
from sijill.jobs.models import Job
from sijill.programs.catalogue import read_program, stored_spec_yaml
from sijill.programs.checks import check_spec
from sijill.programs.jobs import PROGRAM_JOB, ProgramParams
from sijill.programs.service import ELIGIBILITY
from sijill.registry.bulk.jobs import private_folder, save_upload
from sijill.security.area_scope import run_area
from sijill.security.principal import Principal
from sijill.security.roles import Permission
from sijill.web.areas import run_area_choices
from sijill.web.render import service_detail
from sijill.web.routing import page_router
from sijill.web.session import PREFIX, check_csrf, page_principal, transaction

router = page_router()
PrincipalDep = Annotated[Principal, Depends(page_principal)]
NOT_WRITTEN_BACK = N_(
    "The spec of the latest run cannot be written back exactly: upload its file to run it."
)
OTHER_PROGRAM = N_("This file is the spec of another program (%(code)s): run it from its page.")


def run_form(session: Session, principal: Principal) -> dict[str, Any] | None:
    """What the form offers: the areas a run may cover (the whole registry only with a national
    scope, as `run_area` decides) and today's date; None without PROGRAMS_RUN."""
    if not principal.may(Permission.PROGRAMS_RUN):
        return None
    national, areas = run_area_choices(session, principal, Permission.PROGRAMS_RUN)
    return {"national": national, "areas": areas, "today": utcnow().date().isoformat()}


def _start(
    request: Request,
    principal: Principal,
    found: dict[str, Any],
    upload: UploadFile | None,
    params: dict[str, Any],
) -> Job:
    """The spec saved in a private folder of its own, checked whole, and its job started; the
    folder goes with a refusal (and with the job, once it ends)."""
    folder = private_folder(request.app.state.settings.work_dir) / secrets.token_hex(16)
    folder.mkdir(mode=0o700)
    try:
        path = folder / "spec.yaml"
        if upload is not None and upload.filename:
            save_upload(upload.file, path)
        else:
            text = stored_spec_yaml(found)
            if text is None:
                raise InvalidInput(gettext(NOT_WRITTEN_BACK))
            path.write_text(text, encoding="utf-8")
        code = check_spec(path).spec.code
        if code != found["program"]:
            raise InvalidInput(gettext(OTHER_PROGRAM) % {"code": code})
        job_params = ProgramParams(path, snapshot_id=None, upload=folder, **params)
        return request.app.state.jobs.start(PROGRAM_JOB, job_params, principal)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


@router.post("/programs/{program}/runs", name="web_run_program")
def run_program(
    request: Request,
    principal: PrincipalDep,
    program: Annotated[str, Path(pattern=r"^[a-z][a-z0-9-]{1,47}$")],
    spec: Annotated[UploadFile | None, File()] = None,
    as_of: Annotated[date | None, Form()] = None,
    area: Annotated[str, Form(max_length=32, pattern=r"^[A-Za-z0-9_.-]*$")] = "",
    kind: Annotated[str, Form(pattern="^(eligibility|recertification)$")] = ELIGIBILITY,
    dry_run: Annotated[bool, Form()] = False,
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    check_csrf(request, csrf)
    area_code = area or None  # the whole registry
    try:
        with transaction(request, principal) as session:
            principal.require(Permission.PROGRAMS_RUN)
            found = read_program(session, principal, program)
            run_area(
                session, principal, Permission.PROGRAMS_RUN, area_code,
                whole_registry="Running a program over the whole registry",
            )  # fmt: skip
            params = {"as_of": as_of, "area_code": area_code, "dry_run": dry_run, "kind": kind}
            job = _start(request, principal, found, spec, params)
    except InvalidInput as error:
        # Imported here: the program's page imports this module for its form.
        from sijill.web.pages_programs import program_page

        return program_page(
            request, principal, program, status=422, run_refusal=service_detail(error)
        )
    # Post, redirect, get: reloading the job's page starts nothing again.
    return RedirectResponse(f"{PREFIX}/jobs/{format_id(job.id)}", status_code=303)
