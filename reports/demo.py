"""A small synthetic run (results, real trace records, config, seeds, clock log) for tests and demos.

Why here and not in a test: the HTML tests, the browser test and ``python -m reports.demo OUT_DIR`` (a quick
look at the report without a SUT) share it. The trace records are real: appended to a memory TraceStore,
so their hashes are the gateway's.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from conformance.identifiers import make_my_number
from reports import write_reports
from simulators.clock import ClockRegistry
from simulators.trace import TraceRecord, TraceStore

NS = "urn:juki-harness:1"
MY_NUMBER = make_my_number("12345678901")  # valid check digit
OTHER_NUMBER = make_my_number("98765432109")


def envelope(message_type: str, body: str, *, sender: str, receiver: str, message_id: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<j:Envelope xmlns:j="{NS}"><j:Header>'
        f"<j:MessageId>{message_id}</j:MessageId><j:MessageType>{message_type}</j:MessageType>"
        f'<j:Sender actor="{sender}" lgCode="131016"/><j:Receiver actor="{receiver}" lgCode="131016"/>'
        f"<j:SentAt>2026-03-30T10:00:00+09:00</j:SentAt><j:BusinessDate>2026-03-30</j:BusinessDate>"
        f"</j:Header><j:Body>{body}</j:Body></j:Envelope>"
    ).encode()


async def _records() -> list[TraceRecord]:
    store = TraceStore(None)
    await store.open()
    try:
        notice = (f"<j:IdentityNotice><j:JuminhyoCode>12345678906</j:JuminhyoCode>"
                  f"<j:MyNumber>{MY_NUMBER}</j:MyNumber><j:Name>山田 太郎</j:Name></j:IdentityNotice>")
        await store.append(kind="message", verdict="accepted", tenant="t-R04", arrow=8, sender_actor="juki",
                           receiver_actor="cs", message_type="IdentityNotice", message_id="m-1",
                           payload=envelope("IdentityNotice", notice, sender="juki", receiver="cs",
                                            message_id="m-1"))
        await store.append(kind="message", verdict="accepted", tenant="t-R04", arrow=5, sender_actor="cs",
                           receiver_actor="pref", message_type="IdentityNotice", message_id="m-2",
                           payload=envelope("IdentityNotice", notice, sender="cs", receiver="pref",
                                            message_id="m-2"))
        # a yellow arrow carrying a 個人番号: the failure the report must show
        cert = (f"<j:CertificateData><j:IdentificationNo>ID-0001</j:IdentificationNo>"
                f"<j:Remarks>個人番号 {MY_NUMBER[:4]}-{MY_NUMBER[4:8]}-{MY_NUMBER[8:]}</j:Remarks>"
                f"</j:CertificateData>")
        await store.append(kind="response", verdict="accepted", tenant="t-R19", arrow=19,
                           sender_actor="juki", receiver_actor="certserver", message_type="CertificateData",
                           message_id="m-3",
                           findings=[{"code": "CLASS-MYNUMBER", "message": f"個人番号 {MY_NUMBER} on 19"}],
                           payload=envelope("CertificateData", cert, sender="juki", receiver="certserver",
                                            message_id="m-3"))
        await store.append(kind="event", verdict="info", tenant="t-R01", note="counter operation",
                           payload=b"")
        return list(store.query())
    finally:
        await store.close()


def synthetic_records() -> list[TraceRecord]:
    return asyncio.run(_records())


def _exp(check: str, code: str, verdict: str, message: str, **ev: Any) -> dict[str, Any]:
    return {"id": check, "check": check, "code": code, "verdict": verdict, "message": message,
            "evidence": [ev] if ev else []}


def synthetic_results() -> dict[str, Any]:
    """results.json as certify writes it (conformance.certify.results_json; ScenarioResult.to_json)."""
    return {
        "suite": {"version": "1.0", "digest": "sha256:" + "ab" * 32, "scenarios_in_suite": 3},
        "harness": {"version": "0.1.0", "catalogue": "1.0", "counter_contract": "1.0"},
        "sut": "reference", "run_seed": 20260330, "started": "2026-03-30T01:00:00+00:00", "duration": 3.25,
        "summary": {"total": 3, "passed": 1, "failed": 1, "errors": 1, "verdict": "fail"},
        "scenarios": [
            {"id": "R04-F06-positive", "title": {"ja": "本人確認情報の通知", "en": "Identity notice"},
             "route": "R04", "functions": ["F06"], "kind": "positive", "verdict": "pass", "duration": 0.4,
             "tenant": "t-R04",
             "expectations": [_exp("message-on-arrow", "SEQ-ARROW", "pass", "IdentityNotice on 8 then 5",
                                   seq=1, message_id="m-1", arrow=8)]},
            {"id": "R19-F27-yellow",
             "title": {"ja": "識別番号による証明書データ連携", "en": "Certificate data"},
             "route": "R19", "functions": ["F27"], "kind": "negative", "verdict": "fail", "duration": 0.7,
             "tenant": "t-R19",
             "expectations": [_exp("no-my-number", "CLASS-MYNUMBER", "fail",
                                   f"a 個人番号 ({MY_NUMBER}) crossed yellow arrow 19", seq=3,
                                   message_id="m-3", arrow=19,
                                   xpath="/j:Envelope/j:Body/j:CertificateData/j:Remarks",
                                   expected="no 個人番号", actual=f"個人番号 {MY_NUMBER}")]},
            {"id": "R01-F01-error", "title": {"ja": "住民異動届", "en": "Moving notification"},
             "route": "R01", "functions": ["F01"], "kind": "positive", "verdict": "error", "duration": 0.1,
             "tenant": "t-R01", "error": "the counter adapter did not answer", "expectations": []},
        ],
        "coverage": {"functions": {"F06": "pass", "F27": "fail", "F01": "error"}, "routes": {}},
    }


def synthetic_clock_log() -> list[Any]:
    reg = ClockRegistry(frozen=True)
    clock = reg.get("t-R04")
    clock.advance(timedelta(days=14), reason="14 days after moving in")
    return list(reg.log)


def synthetic_config() -> dict[str, Any]:
    return {"sut": {"url": "http://127.0.0.1:8081", "token": "sut-secret-token"},
            "gateway": {"control_token": "control-secret", "port": 8080},
            "tls": {"key_file": "/etc/juki/key.pem", "password": "hunter2"},
            "note": f"resident {OTHER_NUMBER}"}


def write_demo(out_dir: Path, lang: str = "ja", keep_raw: bool = False) -> dict[str, Path]:
    return write_reports(synthetic_results(), synthetic_records(), out_dir, config=synthetic_config(),
                         seeds={"run": 20260330}, clock_log=synthetic_clock_log(), lang=lang,
                         keep_raw=keep_raw)


if __name__ == "__main__":
    paths = write_demo(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-report"),
                       lang=sys.argv[2] if len(sys.argv) > 2 else "ja")
    for p in paths.values():
        print(p)
