"""Who got what, in totals: per program and cycle, what was entitled, sent, paid, failed,
returned and is still owed (`GET /payments/totals`, the user's areas only), and the ledger's
proof (`GET /payments/ledger/check`, a national scope: it sums every account), through the
same services as the API's routes."""

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.responses import Response

from sijill.payments.reports import check_ledger, totals
from sijill.programs.cycles import CYCLE_PATTERN
from sijill.security.principal import Principal
from sijill.web.render import page
from sijill.web.routing import page_router
from sijill.web.session import page_principal, transaction

router = page_router()
PrincipalDep = Annotated[Principal, Depends(page_principal)]
COLUMNS = ("entitled_minor", "sent_minor", "paid_minor", "failed_minor", "returned_minor",
           "outstanding_minor")  # fmt: skip


@router.get("/payments/totals", name="web_payment_totals")
def payment_totals(
    request: Request,
    principal: PrincipalDep,
    program: Annotated[str, Query(pattern=r"^([a-z][a-z0-9-]{1,47})?$")] = "",
    cycle: Annotated[str, Query(pattern=f"^$|{CYCLE_PATTERN}")] = "",
) -> Response:
    with transaction(request, principal) as session:
        rows = totals(session, principal, program or None, cycle or None)
    return page(
        request, "payment_totals.html", rows=rows, columns=COLUMNS, program=program, cycle=cycle
    )


@router.get("/payments/ledger", name="web_ledger_check")
def ledger_check(request: Request, principal: PrincipalDep) -> Response:
    with transaction(request, principal) as session:
        report = check_ledger(session, principal)
    balances = [
        (currency, account, balance)
        for currency, accounts in sorted(report.balances.items())
        for account, balance in sorted(accounts.items())
    ]
    return page(request, "ledger_check.html", report=report, balances=balances)
