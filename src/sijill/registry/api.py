"""`/households`: register, read (now or as of a date), change, search, history; `/imports`:
import a file as a job (202, then `/jobs/{id}`).

Handlers only translate HTTP to `registry.service` calls; the transaction is the request's
(`SessionDep` commits when the handler returns).
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    Path,
    Query,
    Request,
    Response,
    UploadFile,
    status,
)

from sijill.core.errors import FieldError, InvalidInput
from sijill.core.ids import parse_id
from sijill.core.problems import problem_responses
from sijill.jobs.deps import StartJobDep
from sijill.jobs.schemas import JobPublic
from sijill.registry import service
from sijill.registry.bulk.jobs import IMPORT, receive_upload
from sijill.registry.schemas import (
    HouseholdCreate,
    HouseholdHistoryPublic,
    HouseholdPublic,
    HouseholdsPublic,
    HouseholdUpdate,
    parse_as_of,
)
from sijill.security.deps import (
    LoopSessionDep,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    record_audit,
)

router = APIRouter(prefix="/households", tags=["households"])
imports_router = APIRouter(prefix="/imports", tags=["imports"])
# Its body limit is settings.max_upload_bytes, not max_request_bytes (sijill.middleware).
UPLOAD_PATH = "/imports"
# Text the database can store: PostgreSQL refuses NUL characters.
NO_NUL = r"^[^\x00]*$"


async def household_id_path(
    household_id: Annotated[
        str,
        Path(
            description="household registry ID: 10 digits, the last a check digit",
            examples=["4829105731"],
            max_length=40,
        ),
    ],
) -> int:
    try:
        return parse_id("household", household_id)
    except InvalidInput as error:
        raise InvalidInput(error.detail, [FieldError("household_id", error.detail)]) from None


async def as_of_query(
    as_of: Annotated[
        str | None,
        Query(
            description="show the household as it was then: a date (YYYY-MM-DD, meaning the end "
            "of that day, UTC) or a date and time (ISO 8601; UTC if no zone is given)",
            max_length=40,
        ),
    ] = None,
) -> datetime | None:
    if as_of is None:
        return None
    try:
        return parse_as_of(as_of)
    except ValueError as error:
        raise InvalidInput(str(error), [FieldError("as_of", str(error))]) from None


@dataclass
class Page:
    page: int
    page_size: int


async def pagination(
    settings: SettingsDep,
    page: Annotated[int, Query(ge=1, le=1_000_000, description="1 for the first page")] = 1,
    page_size: Annotated[
        int, Query(ge=1, description="households per page, at most the server's page_size_max")
    ] = 50,
) -> Page:
    return Page(page, min(page_size, settings.page_size_max))


HouseholdId = Annotated[int, Depends(household_id_path)]
AsOf = Annotated[datetime | None, Depends(as_of_query)]
Pagination = Annotated[Page, Depends(pagination)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    operation_id="register_household",
    summary="Register a household and its members",
)
def register_household(
    data: HouseholdCreate,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    request: Request,
    response: Response,
) -> HouseholdPublic:
    household = service.register_household(session, principal, data, settings=settings)
    location = request.url_for("read_household", household_id=household.household_id)
    response.headers["Location"] = str(location)
    return household


@router.get(
    "",
    operation_id="search_households",
    summary="Find households by registry ID, national ID, name or area",
)
def search_households(
    session: SessionDep,
    principal: PrincipalDep,
    page: Pagination,
    registry_id: Annotated[
        str | None,
        Query(max_length=40, pattern=NO_NUL, description="a household's or a member's registry ID"),
    ] = None,
    national_id: Annotated[
        str | None,
        Query(max_length=64, pattern=NO_NUL, description="a current member's document number"),
    ] = None,
    name: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=NO_NUL,
            description="words of a current member's name, in Arabic or Latin script",
        ),
    ] = None,
    area_code: Annotated[
        str | None,
        Query(max_length=32, pattern=NO_NUL, description="an area, including the areas within it"),
    ] = None,
) -> HouseholdsPublic:
    rows, count = service.search_households(
        session,
        principal,
        registry_id=registry_id,
        national_id=national_id,
        name=name,
        area_code=area_code,
        page=page.page,
        page_size=page.page_size,
    )
    return HouseholdsPublic(data=rows, count=count)


@router.get(
    "/{household_id}",
    operation_id="read_household",
    responses=problem_responses(404),
    summary="Read a household with its members, now or as it was at a past date",
)
async def read_household(
    household_id: HouseholdId,
    session: LoopSessionDep,
    principal: PrincipalDep,
    as_of: AsOf,
    request: Request,
) -> HouseholdPublic:
    # The hottest route reads on the event loop: one indexed statement (a few for as_of)
    # takes less than handing it to a worker thread and back, where under load threads also
    # contend for the GIL. Its audit entry is group-committed with other requests' before the
    # answer leaves, whether the read succeeded or was refused.
    try:
        return service.get_household(session, principal, household_id, as_of)
    finally:
        # The connection goes back to its pool before the first await: a request waiting for
        # its audit commit must not hold one, or past the pool's size the next request would
        # block the event loop on checkout, and with it the audit writer it waits for.
        session.close()
        await record_audit(request, principal)


@router.put(
    "/{household_id}",
    operation_id="update_household",
    responses=problem_responses(404, 409),
    summary="Change a household: its fields, its members and who left",
)
def update_household(
    household_id: HouseholdId,
    data: HouseholdUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> HouseholdPublic:
    return service.update_household(session, principal, household_id, data, settings=settings)


@router.get(
    "/{household_id}/history",
    operation_id="read_household_history",
    responses=problem_responses(404),
    summary="Every version of a household and every membership it has had",
)
def read_household_history(
    household_id: HouseholdId, session: SessionDep, principal: PrincipalDep
) -> HouseholdHistoryPublic:
    return service.household_history(session, principal, household_id)


@imports_router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="start_import",
    responses=problem_responses(429),
    summary="Import a file of households and their members, as a job",
)
def start_import(
    session: SessionDep,  # appends the audit record of a refusal
    principal: PrincipalDep,
    settings: SettingsDep,
    start: StartJobDep,
    file: Annotated[
        UploadFile,
        File(
            description="CSV, XLSX or Parquet, one row per person with their household's "
            "fields (docs/data-format.md); at most the server's max_upload_bytes"
        ),
    ],
    mapping: Annotated[
        UploadFile | None,
        File(description="YAML mapping of the file's columns and codes (docs/import-mapping.md)"),
    ] = None,
    source: Annotated[
        str | None,
        Form(
            max_length=64,
            pattern=NO_NUL,
            description="name of the source system (record keys are unique within it); by "
            "default the mapping's, else the file's name",
        ),
    ] = None,
) -> JobPublic:
    """Checks the upload and answers 202 at once: the import runs in the background, as
    `sijill import` would run it (every row checked, batches committed whole, rejects with
    their reasons). Follow `Location` (`/jobs/{id}`) until the job has ended."""
    params = receive_upload(
        principal,
        settings,
        file.filename,
        file.file,
        mapping.file if mapping is not None else None,
        source or None,
    )
    return start(IMPORT, params, principal)
