"""Fitted PMT models: stored as their artifact, approved by a second person, loaded for scoring.

Four eyes: whoever fitted a model cannot approve it, and only an approved model scores
households. A model is stored once per version (its content's digest), so saving the same fit
again returns the stored one. Functions flush; the caller's transaction commits.
"""

from sqlalchemy.orm import Session

from sijill.core.clock import utcnow
from sijill.core.errors import Conflict, Forbidden, InvalidInput, NotFound
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
