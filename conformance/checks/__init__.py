"""Named checks: the judge's small rules, each with a stable code (like the OpenID suite's Condition classes).

A scenario's expectation names a check (``check: sequence.order``) and gives its parameters (and, for a
reviewer, ``because:`` — the rule that requires it); the engine runs the check on the tenant's trace records
and the results of the scenario's steps and gets an ``Outcome``. Checks live by family — ``content``,
``sequence``, ``robust``, ``identity`` — each declared once with ``@check(code, name, ..., params, ready=...)``
(code, parameter schema and readiness in one place). Some apply to EVERY scenario (``auto=True``).

Checks see plain data (``Rec`` views of trace records in their HTTP JSON form, ``StepResult``s), so they are
unit-testable on crafted records without a gateway.
"""

from __future__ import annotations

from conformance.checks import content, identity, robust, sequence  # noqa: F401  (registers the checks)
from conformance.checks.base import (
    ASSERTION_OPS,
    CHECKS,
    SCHEMA_DEFS,
    SUT_ACTORS,
    Check,
    CheckContext,
    Evidence,
    Outcome,
    Rec,
    StepResult,
    check,
    describe,
    evaluate_assertions,
    mask_my_numbers,
    match_records,
    run_check,
    xpath_values,
)

__all__ = [
    "ASSERTION_OPS",
    "CHECKS",
    "SCHEMA_DEFS",
    "SUT_ACTORS",
    "Check",
    "CheckContext",
    "Evidence",
    "Outcome",
    "Rec",
    "StepResult",
    "check",
    "describe",
    "evaluate_assertions",
    "mask_my_numbers",
    "match_records",
    "run_check",
    "xpath_values",
]
