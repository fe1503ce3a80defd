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

__all__ = ["DEFECTS", "Defect", "HasDefects", "check_names", "on", "skip", "transform_outgoing"]


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
            "card-deadline-30days",
            "F29",
            "ContinuedUseDeadline is planned move-out + 30 days instead of + 90",
        ),
        _d(
            "eapp-no-window-check",
            "F30",
            "an e-application outside -30/+10 days of the planned move-out is accepted",
        ),
        _d("eapp-no-moc-info", "F30", "a 転出届・転入予約 sends no MoveOutCertInfo to the destination"),
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
