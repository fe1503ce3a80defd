"""都道府県サーバ: keeps every 本人確認情報通知 per person and refuses one that breaks the order of changes.

Why refuse: 住基法30条の6 notices must reach the prefecture in the order the changes happened (DOMAIN.md);
the SUT numbers one person's changes ``Change/Seq`` 1, 2, 3 … A notice is accepted when its Seq is the
person's last Seq + 1. Also accepted: the same message again (a resend with the same MessageId: nothing
happens twice); Seq 1 for a person never seen, or re-recorded (記載, A**) after a 消除 (D**); after a change
of 住民票コード (``PreviousJuminhyoCode``) the history moves to the new code and the count either continues or
restarts at 1. Anything else raises :class:`~simulators.toolbox.Refusal` ``PREF-ORDER``.

The national server reads the accepted notices in process (:meth:`PrefSimulator.identities`): that is how
Juki-Net's upper tier learns the SUT's residents, and it survives a replay because it is this state.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from simulators.base import Message
from simulators.toolbox import (
    Refusal,
    SimBase,
    child,
    identity_from_resident,
    identity_keys,
    residents_in,
    seed_fields,
    to_xml,
    txt,
)

_Keys = tuple[str, int, str, str | None]
#: changes kept per person (history, and the MessageId per Seq that makes a repeated notice idempotent).
#: A person is a dict of strings, numbers and tuples of those — no list or dict inside — so the cyclic
#: collector untracks it: tens of thousands of persons then do not lengthen every full collection (they
#: made each one ~50 ms longer on this machine)
HISTORY = 50
#: the fields of a history entry (a tuple in the state, a dict in ``snapshot``)
HISTORY_FIELDS = ("seq", "reason", "message_id", "event_date", "notified")


def _notice_keys(body: etree._Element) -> _Keys:
    """(住民票コード, Change/Seq, Change/Reason@code, PreviousJuminhyoCode) of a notice."""
    change = child(body, "Change")
    jc = txt(child(body, "Identity"), "JuminhyoCode") or ""
    try:
        seq = int(txt(change, "Seq") or "0")
    except ValueError:
        seq = 0
    reason_el = child(change, "Reason")
    reason = reason_el.get("code", "") if reason_el is not None else ""
    return jc, seq, reason, txt(body, "PreviousJuminhyoCode")


class PrefSimulator(SimBase, actor="pref"):
    """都道府県サーバ: 本人確認情報 per person, in order."""

    def new_state(self) -> dict[str, Any]:
        return {"persons": {}, "refused": [], "accepted": 0}

    # --- the order check (pure) -----------------------------------------------------------------------
    def _verdict(self, st: dict[str, Any], msg: Message, keys: _Keys | None = None) -> tuple[str, int]:
        """("applied" | "new" | "refuse", expected Seq); ``keys``: ``_notice_keys(msg.body)`` if known."""
        jc, seq, reason, prev = keys or _notice_keys(msg.body)
        persons = st["persons"]
        p = persons.get(jc)
        if p is not None and (seq, msg.header.message_id) in p["seqs"]:
            return "applied", seq
        base = p if p is not None else (persons.get(prev) if prev else None)
        last = base["last_seq"] if base is not None else 0
        if seq == last + 1:
            return "new", last + 1
        if seq == 1 and (base is None or (base["deleted"] and reason.startswith("A"))):
            return "new", 1
        if seq == 1 and p is None and prev and base is not None:
            return "new", 1
        return "refuse", last + 1

    def _apply_notice(self, st: dict[str, Any], msg: Message, keys: _Keys | None = None) -> None:
        jc, seq, reason, prev = keys or _notice_keys(msg.body)
        persons = st["persons"]
        p = persons.get(jc)
        if p is None:
            p = persons[jc] = {"last_seq": 0, "seqs": (), "history": (), "deleted": False,
                               "identity": None, "change": None, "changed_to": None}
            old = persons.get(prev) if prev else None
            if old is not None:
                p["history"] = old["history"]
                p["last_seq"] = old["last_seq"]
                old["changed_to"] = jc
        if seq == 1 and p["last_seq"] >= 1:
            p["seqs"] = ()  # re-recorded after a 消除, or a count restarted under a new code
        p["last_seq"] = seq
        p["seqs"] = (*p["seqs"][-(HISTORY - 1):], (seq, msg.header.message_id))
        p["deleted"] = reason.startswith("D")
        p["changed_to"] = None
        identity = child(msg.body, "Identity")
        change = child(msg.body, "Change")
        p["identity"] = to_xml(identity) if identity is not None else None
        p["keys"] = tuple(identity_keys(identity).items()) if identity is not None else ()
        p["change"] = to_xml(change) if change is not None else None
        event = child(change, "EventDate")
        # (Seq, reason code, MessageId, event date, notified date)
        p["history"] = (*p["history"][-(HISTORY - 1):], (
            seq, reason, msg.header.message_id, txt(event, "Western") or txt(event, "Uncertain"),
            txt(change, "NotifiedDate")))
        st["accepted"] += 1

    # --- Simulator ----------------------------------------------------------------------------------------
    def apply(self, msg: Message, direction: str) -> None:
        if direction != "in" or msg.header.message_type != "IdentityNotice":
            return
        st = self.state(msg.tenant)
        keys = _notice_keys(msg.body)
        if self._verdict(st, msg, keys)[0] == "new":
            self._apply_notice(st, msg, keys)

    async def react(self, msg: Message) -> etree._Element | None:
        if msg.header.message_type != "IdentityNotice":
            raise Refusal("PREF-TYPE", f"the prefectural server does not take {msg.header.message_type}")
        st = self.state(msg.tenant)
        keys = _notice_keys(msg.body)
        verdict, expected = self._verdict(st, msg, keys)
        jc, seq, reason, _ = keys
        if verdict == "refuse":
            st["refused"].append({"message_id": msg.header.message_id, "juminhyo_code": jc, "seq": seq,
                                  "expected": expected, "reason": reason})
            raise Refusal("PREF-ORDER", f"本人確認情報通知 for 住民票コード {jc}: Change/Seq {seq} "
                                        f"breaks the order of changes (expected {expected})")
        if verdict == "new":
            self._apply_notice(st, msg, keys)
        self.register(msg.tenant, jc, txt(msg.body, "Identity/MyNumber"))
        return None

    def seed(self, tenant: str | None, kind: str, data: dict[str, Any]) -> None:
        """kind "residents": known persons (xml), optional ``last_seq`` (int, or {住民票コード: int})."""
        fields = seed_fields(data)
        last = fields.get("last_seq", 0)
        st = self.state(tenant)
        for r in residents_in(data):
            jc = txt(r, "JuminhyoCode") or ""
            n = int(last.get(jc, 0)) if isinstance(last, dict) else int(last or 0)
            ident = identity_from_resident(r)
            st["persons"][jc] = {"last_seq": n, "seqs": (), "history": (), "deleted": False,
                                 "identity": to_xml(ident), "keys": tuple(identity_keys(ident).items()),
                                 "change": None,
                                 "changed_to": None}
            self.register(tenant, jc, txt(r, "MyNumber"))

    def snapshot(self, tenant: str | None) -> dict[str, Any]:
        """The state with each person as the control API shows it: history entries and keys as dicts."""
        out = super().snapshot(tenant)
        out["persons"] = {jc: {**p, "history": [dict(zip(HISTORY_FIELDS, h, strict=True)) for h in p["history"]],
                               "seqs": {str(s): m for s, m in p["seqs"]}, "keys": dict(p.get("keys", ()))}
                          for jc, p in self.state(tenant)["persons"].items()}
        return out

    # --- for the national server --------------------------------------------------------------------------
    def identities(self, tenant: str | None) -> dict[str, dict[str, Any]]:
        """Latest 本人確認情報 per current 住民票コード: {"identity", "change" (xml or None), "deleted"}."""
        out: dict[str, dict[str, Any]] = {}
        for jc, p in self.state(tenant)["persons"].items():
            if p["identity"] is None or p.get("changed_to"):
                continue
            out[jc] = {"identity": p["identity"], "change": p["change"], "deleted": p["deleted"],
                       **dict(p.get("keys", ()))}
        return out
