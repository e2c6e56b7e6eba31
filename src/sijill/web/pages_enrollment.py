"""A notified household's answer to a program (enrolled or declined), recorded from its page
through `programs.enrollment.record_answers`, as `POST /programs/{program}/enrollments` does:
same permission, scope, checks and audit."""

from typing import Annotated

from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from sijill.core.errors import Conflict
from sijill.core.i18n import N_, gettext
from sijill.core.ids import format_id
from sijill.programs.enrollment import record_answers
from sijill.security.principal import Principal
from sijill.web.pages_registry import _household_id, household_page
from sijill.web.routing import page_router
from sijill.web.session import PREFIX, check_csrf, page_principal, transaction

router = page_router()
PrincipalDep = Annotated[Principal, Depends(page_principal)]
# The API's pattern of a program's code: anything else names no program.
Program = Annotated[str, Form(max_length=48, pattern=r"^[a-z][a-z0-9-]{1,47}$")]
Answer = Annotated[str, Form(max_length=12)]
NOT_WAITING = N_("Not recorded: this household is no longer waiting for an answer in this program.")


@router.post("/households/{household_id}/enrollment", name="web_answer_enrollment")
def answer(
    request: Request,
    principal: PrincipalDep,
    household_id: str,
    program: Program,
    answer: Answer,
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    check_csrf(request, csrf)
    number = _household_id(household_id)
    try:
        with transaction(request, principal) as session:
            record_answers(
                session,
                principal=principal,
                program=program,
                household_ids=[number],
                answer=answer,
            )
    except Conflict:
        # Answered meanwhile (another caseworker, another tab): the page shows where it stands.
        here = f"{PREFIX}/households/{format_id(number)}"
        refusal = gettext(NOT_WAITING)
        return household_page(request, principal, number, 409, here=here, refusal=refusal)
    # Post, redirect, get: reloading the page does not send the answer again.
    return RedirectResponse(
        f"{PREFIX}/households/{format_id(number)}?done={answer}", status_code=303
    )
