"""Every table of Sijill, registered on `Base.metadata` (for Alembic and the schema test)."""

import sijill.jobs.models  # noqa: F401
import sijill.linkage.models  # noqa: F401
import sijill.payments.models  # noqa: F401
import sijill.programs.entitlement_models  # noqa: F401
import sijill.programs.models  # noqa: F401
import sijill.registry.merges.models  # noqa: F401
import sijill.registry.models  # noqa: F401
import sijill.registry.reviews.models  # noqa: F401
import sijill.security.audit.models  # noqa: F401
import sijill.security.keys.usage  # noqa: F401
import sijill.security.users.models  # noqa: F401
import sijill.targeting.models  # noqa: F401
