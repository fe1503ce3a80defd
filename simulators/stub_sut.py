"""``start_stub_sut(RefConfig)``: the fast stub SUT of ``juki-harness load --sut stub``.

Why a module of this name: ``load/runner.py`` and the docs name it; the stub itself is the package
:mod:`simulators.stub` (record and XML templates, the server and its outbound lanes, the operations).
"""

from simulators.stub import INBOUND, OPERATIONS, StubLimits, StubSut, start_stub_sut

__all__ = ["INBOUND", "OPERATIONS", "StubLimits", "StubSut", "start_stub_sut"]
