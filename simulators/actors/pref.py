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
#: changes kept per person (history, and the MessageId per Seq that makes a repeated notice idempotent)
HISTORY = 50
#: the fields of a history entry (a tuple in the state, a dict in ``snapshot``)
HISTORY_FIELDS = ("seq", "reason", "message_id", "event_date", "notified")
#: A person is a plain tuple of these fields, holding only strings, numbers, None and tuples of those.
#: Why not a dict: tens of thousands of persons live as long as the process, and every full collection of
#: the cyclic collector walks what it tracks (they made each one ~50 ms longer on this machine). The
#: collector stops tracking such a tuple at the first young collection after it is made; a dict only at a
#: full one, so new persons still reached the old generation and made full collections more frequent.
#: ``snapshot`` shows a person as a dict of these names.
PERSON_FIELDS = ("last_seq", "seqs", "history", "deleted", "identity", "change", "changed_to", "keys")
LAST, SEQS, HIST, DELETED, IDENTITY, CHANGE, CHANGED_TO, KEYS = range(len(PERSON_FIELDS))
Person = tuple[Any, ...]


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
        if p is not None and (seq, msg.header.message_id) in p[SEQS]:
            return "applied", seq
        base = p if p is not None else (persons.get(prev) if prev else None)
        last = base[LAST] if base is not None else 0
        if seq == last + 1:
            return "new", last + 1
        if seq == 1 and (base is None or (base[DELETED] and reason.startswith("A"))):
            return "new", 1
        if seq == 1 and p is None and prev and base is not None:
            return "new", 1
        return "refuse", last + 1

    def _apply_notice(self, st: dict[str, Any], msg: Message, keys: _Keys | None = None) -> None:
        jc, seq, reason, prev = keys or _notice_keys(msg.body)
        persons = st["persons"]
        mid = msg.header.message_id
        p = persons.get(jc)
        last, seqs, hist = (p[LAST], p[SEQS], p[HIST]) if p is not None else (0, (), ())
        if p is None:
            old = persons.get(prev) if prev else None
            if old is not None:  # a new 住民票コード: the history and the count carry over
                last, hist = old[LAST], old[HIST]
                persons[prev] = _replaced(old, CHANGED_TO, jc)
        if seq == 1 and last >= 1:
            seqs = ()  # re-recorded after a 消除, or a count restarted under a new code
        identity = child(msg.body, "Identity")
        change = child(msg.body, "Change")
        event = child(change, "EventDate")
        entry = (seq, reason, mid, txt(event, "Western") or txt(event, "Uncertain"), txt(change, "NotifiedDate"))
        persons[jc] = (
            seq, (*seqs[-(HISTORY - 1):], (seq, mid)), (*hist[-(HISTORY - 1):], entry), reason.startswith("D"),
            to_xml(identity) if identity is not None else None, to_xml(change) if change is not None else None,
            None, tuple(identity_keys(identity).items()) if identity is not None else ())
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
            st["persons"][jc] = (n, (), (), False, to_xml(ident), None, None,
                                 tuple(identity_keys(ident).items()))
            self.register(tenant, jc, txt(r, "MyNumber"))

    def snapshot(self, tenant: str | None) -> dict[str, Any]:
        """The state with each person as the control API shows it: history entries and keys as dicts."""
        out = super().snapshot(tenant)
        out["persons"] = {jc: {**dict(zip(PERSON_FIELDS, p, strict=True)),
                               "history": [dict(zip(HISTORY_FIELDS, h, strict=True)) for h in p[HIST]],
                               "seqs": {str(s): m for s, m in p[SEQS]}, "keys": dict(p[KEYS])}
                          for jc, p in self.state(tenant)["persons"].items()}
        return out

    # --- for the national server --------------------------------------------------------------------------
    def identities(self, tenant: str | None) -> dict[str, dict[str, Any]]:
        """Latest 本人確認情報 per current 住民票コード: {"identity", "change" (xml or None), "deleted"}."""
        out: dict[str, dict[str, Any]] = {}
        for jc, p in self.state(tenant)["persons"].items():
            entry = _entry(p)
            if entry is not None:
                out[jc] = entry
        return out

    def identity(self, tenant: str | None, jc: str) -> dict[str, Any] | None:
        """``identities(tenant).get(jc)`` without building the others (a query names one person)."""
        p = self.state(tenant)["persons"].get(jc)
        return None if p is None else _entry(p)


def _entry(p: Person) -> dict[str, Any] | None:
    if p[IDENTITY] is None or p[CHANGED_TO]:
        return None
    return {"identity": p[IDENTITY], "change": p[CHANGE], "deleted": p[DELETED], **dict(p[KEYS])}


def _replaced(p: Person, field: int, value: Any) -> Person:
    """``p`` with one field replaced (a person is immutable: see PERSON_FIELDS)."""
    return (*p[:field], value, *p[field + 1:])
