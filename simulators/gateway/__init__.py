"""The gateway (package): see ``core`` for what it is, ``http`` for how it is served.

Import map (no circle): values <- auth, bounded <- base <- tenancy <- replay; base <- intake, delivery;
core composes them; ``simulators.control`` imports core; ``http`` imports core and control (and is imported
only by whoever serves: ``simulators.runtime``), so this ``__init__`` does not import ``http``.
"""

from simulators.gateway.auth import Credentials, Principal, control_only
from simulators.gateway.core import GATEWAY_KEY, Gateway
from simulators.gateway.values import (
    COUNTER_OPS,
    ID_ELEMENTS,
    SUT_ACTORS,
    CheckedLike,
    Outcome,
    Peek,
    Target,
    Tenant,
    ValidatorLike,
    body_ids,
    default_validator,
    peek_header,
)

__all__ = [
    "COUNTER_OPS", "GATEWAY_KEY", "ID_ELEMENTS", "SUT_ACTORS", "CheckedLike", "Credentials", "Gateway", "Outcome",
    "Peek", "Principal", "Target", "Tenant", "ValidatorLike", "body_ids", "control_only", "default_validator",
    "peek_header",
]
