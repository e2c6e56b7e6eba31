"""Consent purposes: what a household may agree its data is used for.

One definition for the API's schema, the bulk importer's check and the purposes a user may
declare (`X-Purpose`), so the three cannot drift apart.
"""

import re

CONSENT_PURPOSES = ("eligibility_assessment", "payment", "research")
# Sharing with a named agency: `data_sharing:` and the agency's short name.
DATA_SHARING_PREFIX = "data_sharing:"
AGENCY_PATTERN = r"[A-Za-z0-9_.-]{1,40}"
AGENCY = re.compile(AGENCY_PATTERN)
# The same rule as a regular expression over a whole purpose, for the bulk path's columns.
SHARING_PURPOSE_PATTERN = f"^{DATA_SHARING_PREFIX}{AGENCY_PATTERN}$"


def is_consent_purpose(purpose: str) -> bool:
    """A purpose a household can consent to: one of the named ones, or sharing with an agency."""
    if purpose in CONSENT_PURPOSES:
        return True
    agency = purpose.removeprefix(DATA_SHARING_PREFIX)
    return agency != purpose and AGENCY.fullmatch(agency) is not None


def consent_purpose_problem(purpose: str) -> str | None:
    if is_consent_purpose(purpose):
        return None
    return (
        f"'{purpose}' is not a consent purpose: use "
        f"{', '.join(CONSENT_PURPOSES)} or {DATA_SHARING_PREFIX}<agency>"
    )
