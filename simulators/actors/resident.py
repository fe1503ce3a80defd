"""住民 (the resident): the scenarios' driver. It sends what a resident does (card and PIN at the kiosk on 33,
a booking on 15, an e-application on 38) and keeps what it is handed (the printed certificate on 32), so a
scenario can see what the resident walked away with.
"""

from __future__ import annotations

from typing import Any

from simulators.base import Message
from simulators.toolbox import SimBase, capped, remember, txt


class ResidentSimulator(SimBase, actor="resident"):
    """The resident: a driver that also receives printed certificates."""

    def new_state(self) -> dict[str, Any]:
        return {"printed": [], "seen": {}}

    def apply(self, msg: Message, direction: str) -> None:
        if direction != "in" or msg.header.message_type != "PrintedCertificate":
            return
        st = self.state(msg.tenant)
        if not remember(st["seen"], msg.header.message_id):
            return
        capped(st["printed"], {
            "request_no": txt(msg.body, "RequestNo"), "kiosk": txt(msg.body, "KioskId"),
            "pages": txt(msg.body, "Pages"), "sha256": txt(msg.body, "Sha256"),
            "message_id": msg.header.message_id,
        }, 2_000)
