"""Where the gateway finds the simulators: ``SIMULATORS`` (actor id -> class) and the shared toolbox.

Kept so existing imports work: the actors live in :mod:`simulators.actors` (each registers itself), their
shared helpers in :mod:`simulators.toolbox`. ``SIMULATORS`` is loaded on first access (PEP 562) so that
importing :class:`Refusal` from here does not import every actor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simulators.toolbox import *  # noqa: F403  (the toolbox's names, importable from here as before)
from simulators.toolbox import __all__ as _toolbox_all

if TYPE_CHECKING:
    from simulators.base import Simulator

    SIMULATORS: dict[str, type[Simulator]]

__all__ = ["SIMULATORS", *_toolbox_all]


def __getattr__(name: str) -> Any:
    if name == "SIMULATORS":
        from simulators.actors import SIMULATORS

        globals()["SIMULATORS"] = SIMULATORS
        return SIMULATORS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
