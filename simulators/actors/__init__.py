"""The simulated actors, one module each; importing this package registers them all.

Every module here defines one :class:`~simulators.toolbox.SimBase` subclass with its actor id
(``class CsSimulator(SimBase, actor="cs")``), which registers it in :data:`simulators.toolbox.ACTORS`. The
modules are found by listing this package, so a new simulator is a new module and nothing else;
``tests/test_simulators_registry.py`` checks the result against the catalogue's simulated actors.
"""

from __future__ import annotations

import importlib
import pkgutil

from simulators.base import Simulator
from simulators.toolbox import ACTORS


def _load_all() -> dict[str, type[Simulator]]:
    for mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        importlib.import_module(f"{__name__}.{mod}")
    return dict(sorted(ACTORS.items()))


#: Every hosted actor id -> its simulator class.
SIMULATORS: dict[str, type[Simulator]] = _load_all()

__all__ = ["SIMULATORS"]
