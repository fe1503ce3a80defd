"""Reports of a conformance run: report.html, the evidence bundle (evidence.json) and their verification.

Entry point for ``juki-harness certify``: :func:`write_reports`. The CLI (``juki-harness report`` and
``juki-harness verify``) lives in ``reports.cli``. Masking of 個人番号: ``reports.masking``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from conformance import catalogue as catalogue_mod
from conformance.record import TraceRecord
from reports.evidence import EVIDENCE_NAME, build_evidence, file_digest, write_evidence
from reports.html import write_html

__all__ = ["write_reports"]


def write_reports(results: Mapping[str, Any],
                  trace_records: Sequence[TraceRecord] | Sequence[Mapping[str, Any]], out_dir: Path, *,
                  config: Mapping[str, Any] | None, seeds: Mapping[str, Any] | None,
                  clock_log: Sequence[Any], lang: str = "ja", keep_raw: bool = False) -> dict[str, Path]:
    """Write evidence.json, then report.html rendered from results + that evidence; return their paths.

    ``trace_records`` must be the whole trace of the run (seq 1..n), as TraceRecords or record_to_json
    dicts; ``clock_log`` is ``ClockRegistry.log`` (ClockChange objects or their to_json dicts). ``keep_raw``
    keeps raw payloads in the evidence (the HTML is masked either way).
    """
    out_dir = Path(out_dir)
    cat = catalogue_mod.default()
    bundle = build_evidence(results, trace_records, config=config, seeds=seeds, clock_log=clock_log,
                            keep_raw=keep_raw, catalogue_version=cat.version,
                            catalogue_digest=file_digest(cat.source))
    evidence_path = write_evidence(bundle, out_dir / EVIDENCE_NAME)
    html_path = write_html(results, bundle, out_dir, lang=lang, catalogue=cat)
    return {"evidence": evidence_path, "html": html_path}
