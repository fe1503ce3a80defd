"""The evidence bundle (evidence.json) and its offline verification (`juki-harness verify BUNDLE`).

Why: a vendor certifies with it and a reviewer must trust it without rerunning anything. The bundle holds the
harness and suite versions and digests, the config with secrets removed, the seeds, the virtual-clock log,
every trace record with its chain hash, every verdict, an anchor (count, last seq, last trace hash, last
evidence hash) and digests over versions, verdicts and context, so that changing any record, verdict or
version is detected and named. How masking interacts with the trace's hash chain is explained in
``reports.masking``: in short, a masked bundle is verified through its own evidence chain (which covers every
stored field, the ORIGINAL ``payload_sha256`` and the trace's ``hash``/``prev_hash``) plus the trace's
``prev_hash`` links; a ``keep_raw`` bundle is verified in addition with ``simulators.trace.verify_records``.

Shape (``FORMAT``)::

    {"format", "created_at", "versions": {format, harness_version, suite_version, suite_digest,
     catalogue_version, catalogue_digest, sut, started_at, duration_s},
     "masking": {"mode": "masked" | "raw", "salt", "algorithm", "ja", "en"},
     "config", "seeds", "clock_log", "coverage",
     "records": [{...every TraceRecord field, payload as text..., "my_numbers": [{"last4", "salted_sha256"}],
                  "evidence_hash"}],
     "verdicts": [{...one scenario of results.json (masked)..., "hash"}],
     "anchor": {"count", "first_seq", "last_seq", "last_hash", "last_evidence_hash"},
     "digests": {"versions": {field: sha256}, "verdicts", "context", "bundle"}}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conformance.errors import fail
from conformance.masking import mask_and_find, mask_obj, mask_text, new_salt, redact_config, salted_hash
from conformance.record import GENESIS, TraceRecord, record_from_json, record_to_json, verify_records

FORMAT = "juki-harness-evidence/1"
EVIDENCE_NAME = "evidence.json"
VERSION_FIELDS = ("format", "harness_version", "suite_version", "suite_digest", "catalogue_version",
                  "catalogue_digest", "sut", "started_at", "duration_s")
_FREE_TEXT = ("findings", "note")  # record fields that may quote a 個人番号 besides the payload

NOTICE = {
    "masked": {
        "ja": "個人番号は下4桁のみ表示しています。証跡（evidence.json）は個人番号そのものを保持せず、"
              "記録したソルト付きSHA-256のみを保持します。電文本文はマスク済みで、元の電文のSHA-256とハッシュ"
              "チェーンを保持しています。",
        "en": "個人番号 are shown with their last four digits only. The evidence (evidence.json) keeps no "
              "個人番号, only a salted SHA-256 of each (the salt is recorded); payloads are masked and the "
              "ORIGINAL payload SHA-256 and hash chain are kept.",
    },
    "raw": {
        "ja": "注意: この証跡（evidence.json）は --keep-raw で作成され、個人番号を含む元の電文を"
              "そのまま保持しています。取扱いに注意してください（このレポートの表示はマスク済みです）。",
        "en": "Warning: this evidence (evidence.json) was made with --keep-raw and keeps the raw payloads, "
              "個人番号 included. Handle it accordingly (this report's display is masked).",
    },
}


def canonical(obj: Any) -> bytes:
    """The JSON form hashed everywhere: sorted keys, no spaces, UTF-8 (as simulators.trace does)."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(canonical(obj)).hexdigest()


def _chain_hash(prev: str, stored: Mapping[str, Any]) -> str:
    body = {k: v for k, v in stored.items() if k != "evidence_hash"}
    return hashlib.sha256(prev.encode("ascii") + canonical(body)).hexdigest()


def _scenario_hash(scenario: Mapping[str, Any]) -> str:
    return sha256_json({k: v for k, v in scenario.items() if k != "hash"})


def _same(v: Any) -> Any:
    return v


def _sub(results: Mapping[str, Any], outer: str, inner: str) -> Any:
    v = results.get(outer)
    return v.get(inner) if isinstance(v, Mapping) else None


def versions_of(results: Mapping[str, Any], catalogue_version: str | None = None) -> dict[str, Any]:
    """The run's versions from results.json: flat keys (harness_version, suite_version, suite_digest,
    started_at, duration_s) or certify's nested ones (harness.version, suite.version, suite.digest,
    harness.catalogue, started, duration)."""
    def first(*vals: Any) -> Any:
        return next((v for v in vals if v is not None), None)

    return {
        "format": FORMAT,
        "harness_version": first(results.get("harness_version"), _sub(results, "harness", "version")),
        "suite_version": first(results.get("suite_version"), _sub(results, "suite", "version")),
        "suite_digest": first(results.get("suite_digest"), _sub(results, "suite", "digest")),
        "catalogue_version": first(results.get("catalogue_version"), _sub(results, "harness", "catalogue"),
                                   catalogue_version),
        "catalogue_digest": None,
        "sut": results.get("sut"),
        "started_at": first(results.get("started_at"), results.get("started")),
        "duration_s": first(results.get("duration_s"), results.get("duration")),
    }


def as_trace_record(rec: TraceRecord | Mapping[str, Any]) -> TraceRecord:
    """Accept a TraceRecord or its record_to_json form."""
    if isinstance(rec, TraceRecord):
        return rec
    try:
        return record_from_json(rec)
    except (KeyError, TypeError, ValueError) as exc:
        raise fail("RPT-RECORD", f"a trace record could not be read ({exc!r}); expected record_to_json's "
                                 "shape") from exc


def _clock_entry(c: Any) -> Any:
    to_json = getattr(c, "to_json", None)
    return to_json() if callable(to_json) else c


# --------------------------------------------------------------------------------------------- building

def _stored_record(rec: TraceRecord, salt: str | None) -> dict[str, Any]:
    """One record as the bundle keeps it (without its evidence_hash)."""
    d = record_to_json(rec)
    if salt is None:  # keep_raw: exactly record_to_json, so record_from_json rebuilds the TraceRecord
        return d
    text = d["payload"] if d["payload"] is not None else rec.payload.decode("utf-8", errors="replace")
    masked, found = mask_and_find(text)
    seen = dict.fromkeys(found)
    for t in (*(str(f.get("message", "")) for f in rec.findings), rec.note or ""):
        seen.update(dict.fromkeys(mask_and_find(t)[1]))
    out: dict[str, Any] = {}
    for k, v in d.items():
        if k == "payload":
            out[k] = masked
        elif k == "payload_base64":
            out["payload_encoding"] = "utf-8 (invalid bytes replaced)"
        elif k in _FREE_TEXT:
            out[k] = mask_obj(v)
        else:  # hashes, ids, actors, codes: kept as recorded (ids are the harness's own)
            out[k] = v
    out["my_numbers"] = [{"last4": n[-4:], "salted_sha256": salted_hash(n, salt)} for n in seen]
    return out


def build_evidence(results: Mapping[str, Any], records: Iterable[TraceRecord | Mapping[str, Any]], *,
                   config: Mapping[str, Any] | None, seeds: Mapping[str, Any] | None,
                   clock_log: Sequence[Any], keep_raw: bool = False, salt: str | None = None,
                   catalogue_version: str | None = None, catalogue_digest: str | None = None
                   ) -> dict[str, Any]:
    """The bundle as a dict (see the module docstring); ``salt`` is drawn fresh unless given (tests).

    ``catalogue_digest``: sha256 of the route catalogue file the run used (``file_digest``)."""
    recs = [as_trace_record(r) for r in records]
    if not keep_raw and salt is None:
        salt = new_salt()
    use_salt = None if keep_raw else salt
    mask = _same if keep_raw else mask_obj

    versions = mask(versions_of(results, catalogue_version))
    versions["catalogue_digest"] = catalogue_digest
    mode = "raw" if keep_raw else "masked"
    masking = {
        "mode": mode, "salt": use_salt,
        "algorithm": None if keep_raw else "sha256(salt + 12 ASCII digits), hex",
        "ja": NOTICE[mode]["ja"], "en": NOTICE[mode]["en"],
    }

    stored: list[dict[str, Any]] = []
    prev = GENESIS
    for rec in recs:
        s = _stored_record(rec, use_salt)
        s["evidence_hash"] = prev = _chain_hash(prev, s)
        stored.append(s)

    verdicts: list[dict[str, Any]] = []
    for sc in results.get("scenarios", []):
        v = dict(mask(dict(sc)))
        v.pop("hash", None)
        v["hash"] = _scenario_hash(v)
        verdicts.append(v)

    anchor = {
        "count": len(stored), "first_seq": recs[0].seq if recs else None,
        "last_seq": recs[-1].seq if recs else None, "last_hash": recs[-1].hash if recs else GENESIS,
        "last_evidence_hash": prev, "results_digest": results_digest(results),
    }
    bundle: dict[str, Any] = {
        "format": FORMAT, "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": versions, "masking": masking,
        "config": redact_config(config or {}, mask=not keep_raw),
        "seeds": mask(dict(seeds or {})), "clock_log": mask([_clock_entry(c) for c in clock_log]),
        "coverage": mask(results.get("coverage") or {}),
        "records": stored, "verdicts": verdicts, "anchor": anchor,
    }
    bundle["digests"] = _digests(bundle)
    return bundle


def _context(bundle: Mapping[str, Any]) -> dict[str, Any]:
    return {k: bundle.get(k) for k in ("masking", "config", "seeds", "clock_log", "coverage")}


def _digests(bundle: Mapping[str, Any]) -> dict[str, Any]:
    d: dict[str, Any] = {
        "versions": {k: sha256_json(bundle["versions"].get(k)) for k in VERSION_FIELDS},
        "verdicts": sha256_json([v.get("hash") for v in bundle["verdicts"]]),
        "context": sha256_json(_context(bundle)),
    }
    d["bundle"] = sha256_json({"versions": d["versions"], "verdicts": d["verdicts"], "context": d["context"],
                               "anchor": bundle["anchor"]})
    return d


def results_digest(results: Mapping[str, Any]) -> str:
    """Digest of results.json as written (JSON round trip): the anchor holds it, so verify catches an edit."""
    return sha256_json(json.loads(json.dumps(results, ensure_ascii=False, default=str)))


def file_digest(path: str | Path) -> str | None:
    """``sha256:<hex>`` of a file, None if it cannot be read."""
    try:
        return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def write_evidence(bundle: Mapping[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(bundle, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(path)
    return path


def bundle_path(path: Path) -> Path:
    """BUNDLE may name evidence.json or the results directory holding it."""
    return path / EVIDENCE_NAME if path.is_dir() else path


def load_bundle(path: Path) -> dict[str, Any]:
    p = bundle_path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise fail("RPT-BUNDLE", f"cannot read the evidence bundle: {exc}", file=str(p)) from exc
    except json.JSONDecodeError as exc:
        raise fail("RPT-BUNDLE", f"the evidence bundle is not JSON: {exc.msg}", file=str(p),
                   line=exc.lineno) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise fail("RPT-BUNDLE", f"not an evidence bundle of format {FORMAT}", file=str(p))
    return data


# -------------------------------------------------------------------------------------------- verifying

@dataclass(slots=True)
class BundleCheck:
    """Outcome of verify: ``problems`` name what broke (record seq, scenario id, digest)."""

    count: int = 0
    verdicts: int = 0
    mode: str = "masked"
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """"bundle intact: ..." (integrity only, never the run's verdict) or one "FAIL: ..." per problem."""
        if self.ok:
            extra = " and the trace's own chain over raw payloads" if self.mode == "raw" else ""
            return [mask_text(f"bundle intact: {self.count} trace records (evidence chain{extra}), "
                              f"{self.verdicts} verdicts, versions and digests verify")]
        return [mask_text(f"FAIL: {p}") for p in self.problems]


def _check_records(records: Sequence[Any], anchor: Mapping[str, Any], mode: str, out: BundleCheck) -> None:
    prev_ev = GENESIS
    prev_hash: str | None = None
    prev_seq: int | None = None
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            out.problems.append(f"record #{i + 1}: not an object")
            return
        seq = r.get("seq")
        who = f"record seq {seq}"
        if prev_seq is not None and seq != prev_seq + 1:
            out.problems.append(f"{who}: found after seq {prev_seq} (a record is missing or out of order)")
            return
        if prev_hash is not None and r.get("prev_hash") != prev_hash:
            out.problems.append(f"{who}: prev_hash does not match the hash of the record before")
            return
        if r.get("evidence_hash") != _chain_hash(prev_ev, r):
            out.problems.append(f"{who}: evidence hash does not match the record's content "
                                "(a field, the payload hash or the payload was changed)")
            return
        prev_ev, prev_hash, prev_seq = r["evidence_hash"], r.get("hash"), seq
    last = records[-1] if records else None
    expect = {
        "count": len(records), "first_seq": records[0].get("seq") if records else None,
        "last_seq": last.get("seq") if last else None, "last_hash": last.get("hash") if last else GENESIS,
        "last_evidence_hash": prev_ev,
    }
    for k, v in expect.items():
        if anchor.get(k) != v:
            out.problems.append(f"anchor {k}: {anchor.get(k)!r} but the records give {v!r} "
                                "(records were removed or added at the end)")
    if mode == "raw" and records:
        try:
            trs = [record_from_json(r) for r in records]
        except (KeyError, TypeError, ValueError) as exc:
            out.problems.append(f"raw records cannot be rebuilt as trace records: {exc!r}")
            return
        if trs[0].seq != 1 or trs[0].prev_hash != GENESIS:
            out.problems.append(f"record seq {trs[0].seq}: the raw trace does not start at seq 1, so the "
                                "trace's own chain cannot be recomputed")
            return
        res = verify_records(trs)
        if not res.ok:
            out.problems.append(f"record seq {res.first_bad_seq}: {res.reason} "
                                "(trace chain over raw payloads)")


def verify_bundle(bundle: Mapping[str, Any], results: Mapping[str, Any] | None = None) -> BundleCheck:
    """Recompute the evidence chain, the trace links (and, raw, the trace chain), the verdicts and digests.

    ``results``: the results.json beside the bundle, if any; its verdicts must equal the bundle's. A bundle
    whose structure was damaged (a list where an object belongs ...) fails with a problem, never raises.
    """
    try:
        return _verify(bundle, results)
    except (AttributeError, TypeError, KeyError, ValueError) as exc:
        return BundleCheck(problems=[f"the bundle's structure is damaged: {exc!r}"])


def _verify(bundle: Mapping[str, Any], results: Mapping[str, Any] | None) -> BundleCheck:
    mode = str((bundle.get("masking") or {}).get("mode", "masked"))
    records = bundle.get("records") or []
    verdicts = bundle.get("verdicts") or []
    out = BundleCheck(count=len(records), verdicts=len(verdicts), mode=mode)
    if bundle.get("format") != FORMAT:
        out.problems.append(f"format {bundle.get('format')!r} is not {FORMAT}")
    _check_records(records, bundle.get("anchor") or {}, mode, out)

    for i, v in enumerate(verdicts):
        if not isinstance(v, dict) or v.get("hash") != _scenario_hash(v):
            sid = v.get("id") if isinstance(v, dict) else None
            out.problems.append(f"verdict of scenario {sid} (#{i + 1}): its content (verdict, expectations) "
                                "does not match its hash")
    stored = bundle.get("digests") or {}
    try:
        now = _digests(bundle)
    except (KeyError, TypeError, AttributeError) as exc:
        out.problems.append(f"the bundle is incomplete: {exc!r}")
        return out
    for k in VERSION_FIELDS:
        if (stored.get("versions") or {}).get(k) != now["versions"][k]:
            out.problems.append(f"versions digest: {k} was changed (now {bundle['versions'].get(k)!r})")
    for k in ("verdicts", "context"):
        if stored.get(k) != now[k]:
            what = "the list of verdict hashes" if k == "verdicts" else "config, seeds, clock log or masking"
            out.problems.append(f"{k} digest does not match {what}")
    if stored.get("bundle") != now["bundle"]:
        out.problems.append("bundle digest does not match the versions, verdicts, context and anchor digests")

    if results is not None:
        want = (bundle.get("anchor") or {}).get("results_digest")
        if want is not None and results_digest(results) != want:
            out.problems.append("results.json was changed after the run: its digest does not match the "
                                "evidence anchor's results_digest (summary, verdicts or any other field)")
        mine = {v.get("id"): v for v in verdicts if isinstance(v, dict)}
        for sc in results.get("scenarios", []):
            ev = mine.get(sc.get("id"))
            if ev is None:
                out.problems.append(f"results.json scenario {sc.get('id')}: not in the evidence")
                continue
            theirs = [sc.get("verdict"), *(e.get("verdict") for e in sc.get("expectations", []))]
            ours = [ev.get("verdict"), *(e.get("verdict") for e in ev.get("expectations", []))]
            if theirs != ours:
                out.problems.append(f"results.json scenario {sc.get('id')}: verdicts {theirs} differ "
                                    f"from the evidence's {ours}")
    return out
