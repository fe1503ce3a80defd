"""The reference SUT: a correct existing resident-record system (既存住基システム), the model vendors read.

It implements every row of ``docs/sut-contract.md``: the inbound endpoint, the counter adapter, the
consequences of every change in order, and a durable outbox that retries in order across restarts.
Defects for the judge's self-test are injected only through :mod:`simulators.reference.defects`.

API::

    RefConfig(lg_code, gateway_url, token, inbound_token, data_dir, host, port, defects, ...)
    async with ReferenceSut(cfg) as sut: sut.url / sut.inbound_url / sut.counter_url
    async with start_reference_sut(cfg) as sut: ...
    python -m simulators.reference --gateway-url http://127.0.0.1:8700 --port 8800 --data-dir var/reference
"""

from simulators.reference.app import CONTRACT_VERSION, ReferenceSut, counter_operations, start_reference_sut
from simulators.reference.config import RefConfig
from simulators.reference.defects import DEFECTS

__all__ = [
    "CONTRACT_VERSION",
    "DEFECTS",
    "RefConfig",
    "ReferenceSut",
    "counter_operations",
    "start_reference_sut",
]
