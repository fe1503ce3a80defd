"""Defect injection: the only door through which a defect reaches the reference SUT.

Why: every scenario must fail against a SUT with the defect it exists to catch (the judge is judged too).
The normal path asks these small wrappers at named points; with an empty ``defects`` set every wrapper is a
constant no-op, so the shipped behaviour is untouched. A later helper writes the defect catalogue and the
self-test from :data:`DEFECTS` (name → function and a one-line description).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["DEFECTS", "TRAFFIC_DEFECTS", "Defect", "HasDefects", "check_names", "on", "rewrite", "skip",
           "transform_outgoing"]


@dataclass(frozen=True, slots=True)
class Defect:
    """One injectable defect: its name, the function whose scenarios must catch it, what goes wrong."""

    name: str
    function: str
    description: str


def _d(name: str, function: str, description: str) -> tuple[str, Defect]:
    return name, Defect(name, function, description)


DEFECTS: dict[str, Defect] = dict(
    [
        # F01 住民異動届
        _d(
            "movein-no-late-item",
            "F01",
            "a 転入 notified more than 14 days late is recorded without 届出期間経過",
        ),
        _d("movein-wrong-reason", "F01", "国内転入 is recorded with reason A04 (職権記載) instead of A01"),
        _d(
            "moveout-no-planned-status",
            "F01",
            "a 転出届 deletes the record at once instead of status 転出予定",
        ),
        # F02 職権
        _d("correction-no-before", "F02", "the 処理票 of a 職権修正 omits the Before values"),
        # F03 住民票の写し
        _d("copy-missing-address", "F03", "住民票の写し is printed without 住所"),
        _d("copy-unasked-honseki", "F03", "住民票の写し prints 本籍・筆頭者 although not asked"),
        _d(
            "copy-restricted-allowed",
            "F03",
            "a 第三者 or 代理人 gets 本籍, 個人番号 or 住民票コード instead of a refusal",
        ),
        # F04 転出証明書
        _d("moc-any-status", "F04", "a 転出証明書 is issued for a person who is not 転出予定"),
        _d("moc-missing-destination", "F04", "the 転出証明書 lacks the item 転出先"),
        # F05 コンビニ交付
        _d(
            "kiosk-unasked-honseki",
            "F05",
            "CertificateData carries 本籍・筆頭者 although the request did not ask",
        ),
        # F06 本人確認情報通知 (and the outbox rule)
        _d("skip-identity-notice", "F06", "no IdentityNotice is sent on a change of 本人確認情報"),
        _d("identity-seq-restart", "F06", "Change/Seq is always 1 instead of the person's next number"),
        _d("identity-on-household-change", "F06", "an IdentityNotice is sent on a 世帯変更 alone"),
        _d("wrong-address-in-notice", "F06", "the IdentityNotice carries a wrong 住所 (町域)"),
        _d(
            "duplicate-notice",
            "F06",
            "every IdentityNotice is sent twice, the copy with a new MessageId and no RetryReason",
        ),
        _d("reverse-order", "F06", "the outbox sends the newest pending message first"),
        _d(
            "no-retry",
            "F06",
            "a message the gateway answered 503 (or could not take) is dropped, not retried",
        ),
        _d("retry-new-id", "F06", "a resend after 503 carries a new MessageId"),
        _d("retry-no-reason", "F06", "a resend after 503 carries no RetryReason"),
        # F07 照会
        _d(
            "terminal-no-correlation",
            "F07",
            "a CS-terminal request carries no CorrelationId to its counter operation",
        ),
        _d("query-not-printed", "F07", "the 照会結果 omits the identities the CS answered"),
        # F08 転出証明書情報 on request
        _d(
            "moc-info-no-correlation",
            "F08",
            "MoveOutCertInfo answers a request without CorrelationId and RequestNo",
        ),
        _d(
            "moc-info-any-destination",
            "F08",
            "MoveOutCertInfo is sent for subjects moving to another municipality",
        ),
        # F09 特例転入
        _d("smi-no-14day-check", "F09", "特例転入 is accepted more than 14 days after the move-in"),
        _d("smi-no-30day-check", "F09", "特例転入 is accepted more than 30 days after the planned move-out"),
        _d("smi-no-card-check", "F09", "特例転入 is accepted with a card of nobody on the certificate"),
        # F10 市町村通知
        _d("skip-municipal-notice", "F10", "no MunicipalNotice is sent for a foreign resident"),
        _d("municipal-notice-no-resend", "F10", "a refused MunicipalNotice is not resent"),
        # F11 法務省通知
        _d("moj-apply-special-permanent", "F11", "a 法務省通知 on a 特別永住者 is applied instead of held"),
        _d("moj-no-slip", "F11", "the before/after slips of applied 法務省通知 are not printed"),
        # F12..F15 戸籍・附票
        _d(
            "fuhyo-no-mismatch-notice",
            "F12",
            "a FuhyoNotice that disagrees with the koseki gets no FuhyoMismatchNotice",
        ),
        _d("skip-movein-notice", "F13", "no MoveInNotice is sent to the moving-out municipality"),
        _d(
            "movein-overwrites-planned",
            "F13",
            "a received MoveInNotice overwrites the planned move-out values",
        ),
        _d(
            "koseki-no-entry-notice",
            "F14",
            "a KosekiEntry for a person living elsewhere sends no KosekiEntryNotice",
        ),
        _d("skip-fuhyo-notice", "F15", "no FuhyoNotice is sent for a person whose 本籍 is elsewhere"),
        # F16..F19
        _d(
            "entry-no-transfer",
            "F16",
            "an IndividualEntryNotice is recorded without ResidentTransfer to its target",
        ),
        _d("accept-malformed", "F16", "the inbound endpoint answers 202 to malformed or invalid messages"),
        _d("reprocess-duplicate", "F16", "a duplicate inbound MessageId is processed again"),
        _d("skip-resident-transfer", "F17", "no ResidentTransfer is sent to 税務"),
        _d("transfer-tax-no-mynumber", "F17", "the ResidentTransfer to 税務 lacks the 個人番号"),
        _d(
            "wide-area-leaks-honseki",
            "F18",
            "WideAreaCopyInfo carries 本籍・筆頭者 (ResidentType instead of the wide-area set)",
        ),
        _d("skip-addressee-record", "F19", "no AddresseeRecord is sent to the addressee system"),
        # F20..F30
        _d("card-issue-no-cardinfo", "F20", "a card issuance is not followed by CardManagementInfo 交付"),
        _d(
            "mynumber-change-no-card-revoke",
            "F21",
            "a 個人番号 change of a card holder sends no CardStatusChange 廃止",
        ),
        _d("verify-always-valid", "F22", "the 本人確認結果 prints the card as valid whatever CS answered"),
        _d(
            "designate-no-number-request",
            "F23",
            "a new person gets a 住民票コード but no NumberGenerationRequest",
        ),
        _d("new-code-bad-check-digit", "F23", "a new 住民票コード is chosen with a wrong check digit"),
        _d("code-change-no-retry", "F24", "a refused ResidentCodeChange is not retried with another code"),
        _d("skip-notice-destination", "F25", "no NoticeDestination is sent after a 個人番号 is designated"),
        _d(
            "addressee-wrong-code",
            "F26",
            "AddresseeRecord carries a wrong 住民票コード (the symbol request cannot match)",
        ),
        _d(
            "leak-mynumber-certdata",
            "F27",
            "CertificateData carries the 個人番号 in Remarks (yellow arrow 19)",
        ),
        _d("certdata-serves-deleted", "F27", "CertificateData is served for a deleted (消除) person"),
        _d("handover-wrong-slot", "F28", "the hand-over document prints a slot one hour off the booking"),
        _d("skip-card-management-info", "F29", "no CardManagementInfo is sent for a card holder's change"),
        _d(
            "card-info-wrong-arrow",
            "F29",
            "CardManagementInfo is sent to the CS (arrow 8) instead of to card management (arrow 10)",
        ),
        _d(
            "card-deadline-90days",
            "F29",
            "ContinuedUseDeadline on 転出 is planned move-out + 90 days instead of + 30 (番号法施行令)",
        ),
        _d(
            "eapp-no-window-check",
            "F30",
            "an e-application outside -30/+10 days of the planned move-out is accepted",
        ),
        _d("eapp-no-moc-info", "F30", "a 転出届・転入予約 sends no MoveOutCertInfo to the destination"),
        # domain (issue 12)
        _d("tenkyo-no-late-item", "F01", "a 転居 notified more than 14 days late has no 届出期間経過 (住基法23条)"),
        _d(
            "household-change-no-late-item",
            "F01",
            "a 世帯変更 notified more than 14 days late has no 届出期間経過 (住基法25条)",
        ),
        _d("moveout-no-late-item", "F01", "a 転出届 made more than 14 days after the move has no 届出期間経過"),
        _d("abroad-movein-no-late-item", "F01", "a 国外転入 notified more than 14 days late has no 届出期間経過"),
        _d("late-off-by-one", "F01", "the 14 days count the day of the event: a notice on the 14th day is late"),
        _d(
            "card-continued-use-from-move-in",
            "F29",
            "the 90 days of continued use run from the move-in date instead of the 転入届",
        ),
        _d("death-no-card-revoke", "F29", "a card holder's death sends no CardManagementInfo 失効"),
        _d("movein-notice-first-wins", "F13", "a second 転入通知 is ignored: the first confirmed move stays"),
        _d("smi-no-cert-accepted", "F09", "特例転入 is answered accepted although no 転出証明書情報 has arrived"),
        _d(
            "smi-late-cert-refused",
            "F09",
            "a 転出証明書情報 that arrives after a first attempt is refused instead of used",
        ),
        _d("eapp-no-card-check", "F30", "an online 転出届 from an applicant without a card is accepted"),
        _d(
            "eapp-window-by-arrival",
            "F30",
            "the -30/+10 day window is checked on the arrival date instead of SubmittedAt",
        ),
        # judge (issue 12): defects only a sharper judge sees (names, 本籍 text, Seq, clock, refusals, order)
        _d("identity-name-normalised", "F06", "IdentityNotice: a name beyond JIS X 0208 normalised (髙橋→高橋)"),
        _d("identity-name-ivs-dropped", "F06", "IdentityNotice: the IVS selector of a name is dropped"),
        _d("identity-name-variant", "F06", "IdentityNotice: a character of the name replaced by its variant"),
        _d("identity-latin-recased", "F06", "IdentityNotice: a foreign resident's Latin name is re-cased"),
        _d("transfer-name-variant", "F01", "ResidentTransfer: a character of the name replaced by its variant"),
        _d("wide-area-name-variant", "F18", "WideAreaCopyInfo: a character of the name replaced by its variant"),
        _d("card-issue-name-normalised", "F20", "CardIssuanceRequest: a name beyond JIS X 0208 normalised"),
        _d("wide-area-honseki-text", "F18", "WideAreaCopyInfo: 本籍・筆頭者 written as text into the building"),
        _d("wide-area-wrong-address", "F18", "WideAreaCopyInfo: the 番地 is not the registered one"),
        _d("identity-seq-offset", "F06", "a person's first IdentityNotice starts at Seq 7"),
        _d("household-change-consumes-seq", "F06", "a 世帯変更 consumes a Change/Seq without a notice"),
        _d("sent-at-wall-clock", "F06", "SentAt comes from the SUT's wall clock, not the virtual clock"),
        _d("business-date-wall-clock", "F06", "BusinessDate comes from the SUT's wall clock"),
        _d("transfer-before-identity", "F01", "ResidentTransfer is sent before the person's IdentityNotice"),
        _d("copy-third-party-prints-mynumber", "F03", "an accepted 第三者 copy prints the 個人番号"),
        _d("copy-third-party-prints-code", "F03", "an accepted 第三者 copy prints the 住民票コード"),
        _d("refusal-generic-copy", "F03", "CopyRequest refusals carry one generic code"),
        _d("refusal-generic-query", "F07", "IdentityQueryOp refusals carry one generic code"),
        _d("refusal-generic-koseki", "F14", "KosekiEntry refusals carry one generic code"),
        _d("refusal-generic-card-issue", "F20", "CardIssueOp refusals carry one generic code"),
        _d("refusal-generic-mynumber-change", "F21", "MyNumberChangeOp refusals carry one generic code"),
        _d("refusal-generic-birth", "F23", "MovingNotification (出生) refusals carry one generic code"),
        _d("refusal-generic-code-change", "F24", "ResidentCodeChangeOp refusals carry one generic code"),
        _d("refusal-generic-handover", "F28", "CardHandoverOp refusals carry one generic code"),
        _d("inbound-no-auth", "F14", "POST /inbound accepts a message with a wrong credential"),
        _d("wide-area-generic-code", "F18", "WideAreaCopyInfo refusals and not-founds carry one generic code"),
    ]
)


class HasDefects(Protocol):
    """Anything that carries the injected defect names (the reference SUT's config)."""

    @property
    def defects(self) -> frozenset[str]: ...


def check_names(names: Iterable[str]) -> frozenset[str]:
    """Validate defect names from a config or command line; unknown names fail loudly."""
    out = frozenset(names)
    unknown = sorted(out - DEFECTS.keys())
    if unknown:
        raise ValueError(f"unknown defect(s): {', '.join(unknown)}; known: {', '.join(sorted(DEFECTS))}")
    return out


def on(cfg: HasDefects, name: str) -> bool:
    """True when defect ``name`` is injected (a programming error if the name is not catalogued)."""
    if name not in DEFECTS:
        raise KeyError(f"uncatalogued defect point {name!r}")
    return bool(cfg.defects) and name in cfg.defects


def skip(cfg: HasDefects, name: str) -> bool:
    """Alias of :func:`on` that reads well at points that leave a step out (``if skip(cfg, ...)``)."""
    return on(cfg, name)


def transform_outgoing(cfg: HasDefects, message_type: str, copies: int = 1) -> int:
    """How many copies of an outgoing message of ``message_type`` to enqueue (``duplicate-notice``)."""
    if message_type == "IdentityNotice" and on(cfg, "duplicate-notice"):
        return copies + 1
    return copies


# judge (issue 12): defects that are a rewrite of what the SUT sends or answers (conformance/mutations.py
# TRAFFIC), so the same defect can be injected into any SUT's traffic by `selftest --mutate`.
#: defect -> (traffic mutation, the message types (sent) or counter operations (answered) it touches)
TRAFFIC_DEFECTS: dict[str, tuple[str, frozenset[str]]] = {
    "identity-name-normalised": ("itaiji-normalised", frozenset({"IdentityNotice"})),
    "identity-name-ivs-dropped": ("ivs-dropped", frozenset({"IdentityNotice"})),
    "identity-name-variant": ("itaiji-variant", frozenset({"IdentityNotice"})),
    "identity-latin-recased": ("latin-recased", frozenset({"IdentityNotice"})),
    "transfer-name-variant": ("itaiji-variant", frozenset({"ResidentTransfer"})),
    "wide-area-name-variant": ("itaiji-variant", frozenset({"WideAreaCopyInfo"})),
    "card-issue-name-normalised": ("itaiji-normalised", frozenset({"CardIssuanceRequest"})),
    "wide-area-honseki-text": ("honseki-in-text", frozenset({"WideAreaCopyInfo"})),
    "wide-area-wrong-address": ("address-shifted", frozenset({"WideAreaCopyInfo"})),
    "identity-seq-offset": ("seq-offset", frozenset({"IdentityNotice"})),
    "sent-at-wall-clock": ("sent-at-wall-clock", frozenset({"IdentityNotice"})),
    "business-date-wall-clock": ("business-date-wall-clock", frozenset({"IdentityNotice"})),
    "refusal-generic-copy": ("refusal-generic", frozenset({"CopyRequest"})),
    "refusal-generic-query": ("refusal-generic", frozenset({"IdentityQueryOp"})),
    "refusal-generic-koseki": ("refusal-generic", frozenset({"KosekiEntry"})),
    "refusal-generic-card-issue": ("refusal-generic", frozenset({"CardIssueOp"})),
    "refusal-generic-mynumber-change": ("refusal-generic", frozenset({"MyNumberChangeOp"})),
    "refusal-generic-birth": ("refusal-generic", frozenset({"MovingNotification"})),
    "refusal-generic-code-change": ("refusal-generic", frozenset({"ResidentCodeChangeOp"})),
    "refusal-generic-handover": ("refusal-generic", frozenset({"CardHandoverOp"})),
    "wide-area-generic-code": ("refusal-generic", frozenset({"WideAreaCopyInfo"})),
}


def rewrite(cfg: HasDefects, what: str, data: bytes) -> bytes:
    """``data`` (an envelope the SUT sends, or a counter answer) as the injected traffic defects rewrite it;
    ``what`` is the message type sent or the counter operation answered. Unchanged without defects."""
    if not cfg.defects:
        return data
    from conformance.mutations import TRAFFIC

    for name in sorted(cfg.defects & TRAFFIC_DEFECTS.keys()):
        mutation, applies = TRAFFIC_DEFECTS[name]
        if what in applies:
            out = TRAFFIC[mutation].fn(data)
            data = out[0] if isinstance(out, list) else out
    return data
