"""The fast stub SUT for the load test (``juki-harness load --sut stub``); see :mod:`simulators.stub.core`."""

from simulators.stub import inbound as _inbound  # noqa: F401  (fills the handler tables)
from simulators.stub import ops as _ops  # noqa: F401
from simulators.stub import registers as _registers  # noqa: F401
from simulators.stub.core import INBOUND, OPERATIONS, StubLimits, StubSut, start_stub_sut

__all__ = ["INBOUND", "OPERATIONS", "StubLimits", "StubSut", "start_stub_sut"]
