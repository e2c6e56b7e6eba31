"""Fitted PMT models: stored as their artifact, approved by a second person, loaded for scoring.

Four eyes: whoever fitted a model cannot approve it, and only an approved model scores
households. A model is stored once per version (its content's digest), so saving the same fit
again returns the stored one. Functions flush; the caller's transaction commits.
"""

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sijill.core.clock import utcnow
from sijill.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from sijill.security.principal import Principal
from sijill.security.roles import Permission
from sijill.targeting.models import PmtModel
from sijill.targeting.pmt import check_artifact


def save_model(session: Session, artifact: dict, fitted_by: str, survey_name: str) -> PmtModel:
    """Store a fitted model (unapproved); the stored one when this version is already there."""
    check_artifact(artifact)
    version = artifact["version"]
    stored = session.get(PmtModel, version)
    if stored is not None:
        return stored
    model = PmtModel(
        version=version,
        method=artifact["method"],
        body=artifact,
        survey=survey_name,
        fitted_by=fitted_by,
        fitted_at=utcnow(),
    )
    session.add(model)
    session.flush()
    return model


def require_model_reader(principal: Principal) -> None:
    """Models are read by those who fit them and those who score with them."""
    if not (principal.may(Permission.TARGETING_FIT) or principal.may(Permission.TARGETING_RUN)):
        principal.require(Permission.TARGETING_FIT)


def list_models(session: Session, principal: Principal) -> list[PmtModel]:
    """Every stored model, the latest fitted first."""
    require_model_reader(principal)
    return list(session.scalars(select(PmtModel).order_by(PmtModel.fitted_at.desc())))


def model_summary(model: PmtModel) -> dict[str, Any]:
    """A stored model in a list: who fitted and approved it, and its out-of-sample figures
    (of its own method)."""
    validation = model.body.get("validation") or {}
    return {
        "version": model.version,
        "method": model.method,
        "survey": model.survey,
        "fitted_by": model.fitted_by,
        "fitted_at": model.fitted_at,
        "approved_by": model.approved_by,
        "approved_at": model.approved_at,
        "out_of_sample": (validation.get("out_of_sample") or {}).get(model.method),
    }


def get_model(session: Session, version: str, lock: bool = False) -> PmtModel:
    model = session.get(PmtModel, version, with_for_update=lock)
    if model is None:
        raise NotFound(f"no PMT model {version}")
    return model


def approve(session: Session, version: str, approver: str) -> PmtModel:
    """Approve a model for scoring: by someone other than who fitted it, and only once."""
    model = get_model(session, version, lock=True)
    if model.approved_by is not None:
        raise Conflict(f"PMT model {version} is already approved")
    if approver == model.fitted_by:
        raise Forbidden(
            f"PMT model {version} was fitted by this user: another person approves it (four eyes)"
        )
    model.approved_by = approver
    model.approved_at = utcnow()
    session.flush()
    return model


def approve_for(session: Session, principal: Principal, version: str) -> PmtModel:
    """`approve` by a signed-in user (the API's route and the model's page): their permission
    checked, and the approval audited."""
    principal.require(Permission.TARGETING_APPROVE)
    model = approve(session, version, principal.username)
    principal.audit(
        "targeting.pmt_approve", "ok", "pmt_model", version, permission=Permission.TARGETING_APPROVE
    )
    return model


def load_approved(session: Session, version: str) -> PmtModel:
    """An approved model, its artifact (`body`) checked against its version, for scoring."""
    model = get_model(session, version)
    if model.approved_by is None:
        raise InvalidInput(
            f"PMT model {version} is not approved: a person other than its fitter approves it "
            "before it scores households"
        )
    check_artifact(model.body)
    return model
