"""The resident keeps what the kiosk printed for it (arrow 32), once per message."""

from __future__ import annotations

from conformance.envelope import J, header
from simulators.actors.resident import ResidentSimulator
from simulators.base import Message
from simulators.clock import DEFAULT_START
from tests.test_simulators_support import FakePort


def _printed(mid: str) -> Message:
    h = header("PrintedCertificate", ("kiosk", "131016"), ("resident", "131016"), sent_at=DEFAULT_START,
               message_id=mid)
    body = J.PrintedCertificate(J.RequestNo("R-1"), J.KioskId("K-1"), J.Pages("1"), J.Sha256("ab"))
    return Message(header=h, body=body, arrow=32, tenant="T1")


def test_keeps_each_printed_certificate_once() -> None:
    sim = ResidentSimulator(FakePort())
    sim.apply(_printed("M-1"), "in")
    sim.apply(_printed("M-1"), "in")  # replay after restart must not duplicate
    sim.apply(_printed("M-2"), "out")  # not something the resident received
    printed = sim.state("T1")["printed"]
    assert [p["message_id"] for p in printed] == ["M-1"]
    assert printed[0]["request_no"] == "R-1" and sim.state("T2")["printed"] == []
