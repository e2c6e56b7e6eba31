"""A linkage model written out for review (`GET /linkage/models/{version}`, for those who run
linkage): what it compares, each comparison's levels with their m and u probabilities and the
match weight they add, the blocking rules that choose the pairs it scores, and the prior."""

import math
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.responses import Response

from sijill.core.errors import NotFound
from sijill.linkage.models import LinkageModel
from sijill.security.principal import Principal
from sijill.security.roles import Permission
from sijill.web.render import page
from sijill.web.routing import page_router
from sijill.web.session import page_principal, transaction

router = page_router()
PrincipalDep = Annotated[Principal, Depends(page_principal)]
Version = Annotated[str, Path(pattern=r"^m-[0-9a-f]{16}$")]


def _figure(value: Any) -> Decimal | None:
    return Decimal(str(value)) if isinstance(value, int | float) else None


def _weight(m: Any, u: Any) -> Decimal | None:
    """The match weight a level adds: log2(m / u), to a hundredth."""
    if not isinstance(m, int | float) or not isinstance(u, int | float) or m <= 0 or u <= 0:
        return None
    return Decimal(str(round(math.log2(m / u), 2)))


def _comparisons(settings: dict[str, Any]) -> list[dict[str, Any]]:
    shown = []
    for comparison in settings.get("comparisons", []):
        levels = [
            {
                "label": level.get("label_for_charts") or level.get("sql_condition", ""),
                "condition": level.get("sql_condition", ""),
                "null": bool(level.get("is_null_level")),
                "m": _figure(level.get("m_probability")),
                "u": _figure(level.get("u_probability")),
                "weight": _weight(level.get("m_probability"), level.get("u_probability")),
            }
            for level in comparison.get("comparison_levels", [])
        ]
        shown.append({
            "name": comparison.get("output_column_name", ""),
            "description": comparison.get("comparison_description", ""),
            "levels": levels,
        })  # fmt: skip
    return shown


@router.get("/linkage/models/{version}", name="web_linkage_model")
def linkage_model(request: Request, principal: PrincipalDep, version: Version) -> Response:
    with transaction(request, principal) as session:
        principal.require(Permission.LINKAGE_RUN)
        stored = session.get(LinkageModel, version)
        if stored is None:
            raise NotFound(f"There is no linkage model {version}")
        body = stored.body
    settings = body.get("splink") or {}
    rules = [
        rule.get("blocking_rule", "") if isinstance(rule, dict) else str(rule)
        for rule in settings.get("blocking_rules_to_generate_predictions", [])
    ]
    prior = settings.get("probability_two_random_records_match")
    return page(
        request,
        "linkage_model.html",
        version=version,
        trained_at=stored.trained_at,
        records=stored.trained_on_records,
        prior=_figure(prior),
        prior_weight=_weight(prior, 1 - prior) if isinstance(prior, float) and prior < 1 else None,
        comparisons=_comparisons(settings),
        rules=rules,
    )
