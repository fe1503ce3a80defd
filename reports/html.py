"""report.html: one self-contained page (inline CSS, JS and SVG; no network) rendered with Jinja2.

Why one file: a vendor mails it to a reviewer, who opens it offline. It is rendered from results.json and the
evidence bundle only, so ``juki-harness report`` can render it again (another language) without rerunning.
Every text that reaches the page goes through ``reports.masking.mask_text`` (Jinja ``finalize``), and the
pretty-printed messages mask each text and attribute value before markup is added.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import jinja2
from lxml import etree
from markupsafe import Markup

from conformance import catalogue as catalogue_mod
from conformance.catalogue import Catalogue
from conformance.errors import HarnessError
from conformance.xmlsafe import NSMAP, parse
from reports import diagram
from reports.masking import mask_text

TEMPLATES = Path(__file__).resolve().parent / "templates"
REPORT_NAME = "report.html"
LANGS = ("ja", "en")
MAX_ARROW_MESSAGES = 200
MAX_CLOCK_ROWS = 500
MAX_EVIDENCE_ITEMS = 5  # pretty-printed messages per failed expectation

LABELS: dict[str, dict[str, str]] = {
    "ja": {
        "title": "適合性試験レポート", "sut": "試験対象システム", "harness": "ハーネス版",
        "suite": "スイート版", "suite_digest": "スイートダイジェスト", "catalogue": "経路カタログ版",
        "started": "開始", "duration": "所要時間", "seconds": "秒", "summary": "概要",
        "scenarios": "シナリオ", "pass": "合格", "fail": "不合格", "error": "エラー", "notrun": "未実施",
        "total": "合計", "masking": "個人番号の取扱い", "anchor": "証跡アンカー",
        "last_seq": "最終シーケンス", "last_hash": "最終ハッシュ", "last_evidence_hash": "最終証跡ハッシュ",
        "bundle_digest": "証跡ダイジェスト",
        "anchor_note": "アンカーとダイジェストは証跡とは別に保管してください（juki-harness verify で検証）。",
        "diagram": "データフロー図",
        "diagram_note": "矢印をクリックすると、その矢印のシナリオと電文を表示します。", "legend": "凡例",
        "manual": "破線：手動（端末入力を含む）", "system": "実線：システム間連携",
        "green": "緑：特定個人情報を含む", "yellow": "黄：特定個人情報を含まない",
        "blue": "青：住民によるWEB・キオスク申請（特定個人情報を含まない）", "none": "灰：区分なし",
        "functions": "機能", "function": "機能", "route": "経路", "routes": "経路別結果", "arrow": "矢印",
        "arrows": "矢印一覧", "from_to": "送信元 → 送信先", "line": "線種", "class": "区分",
        "status": "結果", "unused": "どの経路にも現れない番号", "messages": "電文",
        "no_messages": "この矢印の電文はありません。",
        "no_scenarios": "この矢印を通るシナリオは実施されていません。", "more": "件を省略",
        "failures": "不合格・エラーの詳細", "no_failures": "不合格・エラーはありません。",
        "expectation": "期待事項", "check": "検査", "code": "コード", "message": "メッセージ",
        "expected": "期待値", "actual": "実際値", "xpath": "XPath", "evidence": "根拠電文",
        "no_message": "根拠電文は証跡にありません。", "coverage": "カバレッジ（機能 × シナリオ）",
        "id": "ID", "title_col": "名称", "kind": "種別", "verdict": "判定", "seq": "連番", "time": "時刻",
        "type": "電文種別", "sender": "送信元", "receiver": "送信先", "message_id": "電文ID",
        "findings": "所見", "law": "根拠法令", "chain": "矢印の並び", "appendix": "付録",
        "config": "設定（秘密情報は除去）", "seeds": "乱数シード", "clock": "仮想時計の記録",
        "close": "閉じる", "expectations": "期待事項", "failed_expectations": "不合格の期待事項",
        "records": "トレース件数", "mode_masked": "マスク", "mode_raw": "生データ保持（--keep-raw）",
        "function_status": "機能別結果", "scenario_error": "シナリオのエラー",
    },
    "en": {
        "title": "Conformance report", "sut": "System under test", "harness": "Harness version",
        "suite": "Suite version", "suite_digest": "Suite digest", "catalogue": "Route catalogue version",
        "started": "Started", "duration": "Duration", "seconds": "s", "summary": "Summary",
        "scenarios": "Scenarios", "pass": "pass", "fail": "fail", "error": "error", "notrun": "not run",
        "total": "total", "masking": "個人番号 handling", "anchor": "Evidence anchor",
        "last_seq": "Last seq", "last_hash": "Last trace hash", "last_evidence_hash": "Last evidence hash",
        "bundle_digest": "Bundle digest",
        "anchor_note": "Keep the anchor and digest apart from the bundle (check with juki-harness verify).",
        "diagram": "Data-flow diagram", "diagram_note": "Click an arrow to see its scenarios and messages.",
        "legend": "Legend", "manual": "dashed: manual work (terminal input included)",
        "system": "solid: system-to-system", "green": "green: carries 個人番号",
        "yellow": "yellow: no 個人番号", "blue": "blue: resident applies via web or kiosk (no 個人番号)",
        "none": "grey: no data class", "functions": "Functions", "function": "Function", "route": "Route",
        "routes": "Results by route", "arrow": "Arrow", "arrows": "Arrows", "from_to": "from → to",
        "line": "line", "class": "class", "status": "status", "unused": "number used by no route",
        "messages": "Messages", "no_messages": "No message crossed this arrow.",
        "no_scenarios": "No scenario over this arrow was run.", "more": "more not shown",
        "failures": "Failures and errors", "no_failures": "No failure and no error.",
        "expectation": "Expectation", "check": "check", "code": "code", "message": "message",
        "expected": "expected", "actual": "actual", "xpath": "XPath", "evidence": "Message",
        "no_message": "The message is not in the evidence.", "coverage": "Coverage (functions × scenarios)",
        "id": "id", "title_col": "title", "kind": "kind", "verdict": "verdict", "seq": "seq",
        "time": "time", "type": "type", "sender": "sender", "receiver": "receiver",
        "message_id": "message id", "findings": "findings", "law": "law", "chain": "arrows",
        "appendix": "Appendix", "config": "Configuration (secrets removed)", "seeds": "Seeds",
        "clock": "Virtual-clock log", "close": "close", "expectations": "expectations",
        "failed_expectations": "failed expectations", "records": "trace records", "mode_masked": "masked",
        "mode_raw": "raw kept (--keep-raw)", "function_status": "Functions",
        "scenario_error": "Scenario error",
    },
}
LINE_JA = {"manual": "破線", "system": "実線"}
CLASS_JA = {"green": "緑", "yellow": "黄", "blue": "青", "none": "—"}


def verdict_of(v: Any) -> str:
    """Normalise a verdict to pass | fail | error."""
    s = str(v or "").lower()
    return s if s in ("pass", "fail", "error") else ("pass" if s in ("ok", "passed") else "error")


def _worst(verdicts: Sequence[str]) -> str:
    if not verdicts:
        return "notrun"
    if "error" in verdicts or "fail" in verdicts:
        return "fail"
    return "pass"


# --------------------------------------------------------------------------------------- pretty XML

@dataclass(slots=True)
class _Marks:
    elements: set[etree._Element] = field(default_factory=set)
    attributes: dict[etree._Element, set[str]] = field(default_factory=dict)


def _marks(root: etree._Element, xpath: str | None) -> _Marks:
    m = _Marks()
    if not xpath:
        return m
    try:
        found = root.getroottree().xpath(xpath, namespaces=NSMAP)
    except (etree.XPathError, TypeError, ValueError):
        return m
    for item in found if isinstance(found, list) else []:
        if isinstance(item, etree._Element):
            m.elements.add(item)
        elif isinstance(item, str):  # an attribute value or text: lxml "smart strings" know their parent
            parent = getattr(item, "getparent", lambda: None)()
            if parent is None:
                continue
            if getattr(item, "is_attribute", False):
                m.attributes.setdefault(parent, set()).add(str(getattr(item, "attrname", "")))
            else:
                m.elements.add(parent)
    return m


def _qname(el: etree._Element, name: str) -> str:
    q = etree.QName(name)
    if q.namespace is None:
        return q.localname
    prefix = next((p for p, u in (el.nsmap or {}).items() if u == q.namespace), None)
    return f"{prefix}:{q.localname}" if prefix else q.localname


def _lines(el: etree._Element, depth: int, marks: _Marks, parent_ns: Mapping[str | None, str],
           out: list[tuple[str, bool]], inherited: bool) -> None:
    pad = "  " * depth
    if not isinstance(el.tag, str):  # comment or processing instruction
        out.append((pad + escape(mask_text(str(el))), inherited))
        return
    hl = inherited or el in marks.elements
    name = _qname(el, el.tag)
    attrs: list[str] = []
    for p, uri in (el.nsmap or {}).items():
        if parent_ns.get(p) != uri:
            attrs.append(f' <span class="xa">xmlns{":" + p if p else ""}</span>="{escape(uri)}"')
    marked_attrs = marks.attributes.get(el, set())
    for key, value in el.attrib.items():
        k, v = str(key), str(value)
        text = f' <span class="xa">{escape(_qname(el, k))}</span>="{escape(mask_text(v))}"'
        if etree.QName(k).localname in marked_attrs or k in marked_attrs:
            text = f"<mark>{text}</mark>"
        attrs.append(text)
    open_tag = f'&lt;<span class="xt">{escape(name)}</span>{"".join(attrs)}'
    close_tag = f'&lt;/<span class="xt">{escape(name)}</span>&gt;'
    children = list(el)
    text = (el.text or "").strip()
    if not children:
        if text:
            out.append((f"{pad}{open_tag}&gt;{escape(mask_text(text))}{close_tag}", hl))
        else:
            out.append((f"{pad}{open_tag}/&gt;", hl))
        return
    out.append((f"{pad}{open_tag}&gt;", hl))
    if text:
        out.append((f"{pad}  {escape(mask_text(text))}", hl))
    for c in children:
        _lines(c, depth + 1, marks, el.nsmap or {}, out, hl)
        tail = (c.tail or "").strip()
        if tail:
            out.append((f"{pad}  {escape(mask_text(tail))}", hl))
    out.append((pad + close_tag, hl))


def pretty_xml(payload: str | None, xpath: str | None = None) -> Markup:
    """The message indented, values masked, the node(s) ``xpath`` selects highlighted (``<mark>``)."""
    if not payload:
        return Markup("")
    try:
        root = parse(payload)
    except HarnessError:
        return Markup(f'<pre class="xml">{escape(mask_text(payload))}</pre>')
    out: list[tuple[str, bool]] = []
    _lines(root, 0, _marks(root, xpath), {}, out, False)
    body = "\n".join(f'<span class="hl">{line}</span>' if hl else line for line, hl in out)
    return Markup(f'<pre class="xml">{body}</pre>')


# -------------------------------------------------------------------------------------------- model

def _records_by(evidence: Mapping[str, Any]) -> tuple[dict[int, dict[str, Any]], dict[str, dict[str, Any]],
                                                       dict[int, list[dict[str, Any]]]]:
    by_seq: dict[int, dict[str, Any]] = {}
    by_id: dict[str, dict[str, Any]] = {}
    by_arrow: dict[int, list[dict[str, Any]]] = {}
    for r in evidence.get("records") or []:
        if isinstance(r.get("seq"), int):
            by_seq[r["seq"]] = r
        mid = r.get("message_id")
        if mid and (mid not in by_id or r.get("kind") == "message"):
            by_id.setdefault(mid, r)
        if isinstance(r.get("arrow"), int):
            by_arrow.setdefault(r["arrow"], []).append(r)
    return by_seq, by_id, by_arrow


def _evs(e: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """An expectation's evidence: the engine writes a list; a single object is accepted too."""
    ev = e.get("evidence")
    if isinstance(ev, Mapping):
        return [ev]
    if isinstance(ev, list):
        return [x for x in ev if isinstance(x, Mapping)]
    return []


def _int(v: Any) -> int | None:
    try:
        return int(v) if v is not None and not isinstance(v, bool) else None
    except (TypeError, ValueError):
        return None


def _shown(v: Any) -> str:
    """expected/actual as text: strings as they are, anything else as compact JSON-ish text."""
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False)


def build_model(results: Mapping[str, Any], evidence: Mapping[str, Any], cat: Catalogue, lang: str
                ) -> dict[str, Any]:
    """Everything the template needs, computed once."""
    scenarios = [dict(s) for s in results.get("scenarios") or []]
    by_seq, by_id, by_arrow = _records_by(evidence)
    tenant_arrows: dict[str, set[int]] = {}
    for r in evidence.get("records") or []:
        if r.get("tenant") and isinstance(r.get("arrow"), int):
            tenant_arrows.setdefault(r["tenant"], set()).add(r["arrow"])

    failures: list[dict[str, Any]] = []
    arrow_scen: dict[int, list[dict[str, Any]]] = {n: [] for n in cat.arrows}
    failed_arrows: set[int] = set()
    for s in scenarios:
        s["verdict"] = verdict_of(s.get("verdict"))
        route = cat.routes.get(str(s.get("route") or ""))
        arrows = set(route.arrows) if route else set()
        if s.get("tenant"):
            arrows |= tenant_arrows.get(str(s["tenant"]), set())
        exps = [dict(e) for e in s.get("expectations") or []]
        attributed = False
        for e in exps:
            e["verdict"] = verdict_of(e.get("verdict"))
            evs = _evs(e)
            e_arrows = {n for n in (_int(ev.get("arrow")) for ev in evs) if n is not None}
            arrows |= e_arrows
            if e["verdict"] == "pass":
                continue
            failed_arrows |= e_arrows
            attributed = attributed or bool(e_arrows)
            items = []
            for ev in evs[:MAX_EVIDENCE_ITEMS]:
                rec = by_seq.get(_int(ev.get("seq")) or -1) or by_id.get(str(ev.get("message_id") or ""))
                items.append({"ev": ev, "record": rec, "expected": _shown(ev.get("expected")),
                              "actual": _shown(ev.get("actual")),
                              "xml": pretty_xml(rec.get("payload") if rec else None, ev.get("xpath"))})
            failures.append({"scenario": s, "exp": e, "items": items, "more": max(0, len(evs) - len(items))})
        if s["verdict"] != "pass" and not attributed:
            failed_arrows |= arrows  # cannot tell which arrow: every arrow it touched is suspect
            if not any(e["verdict"] != "pass" for e in exps):
                failures.append({"scenario": s, "exp": None, "items": [], "more": 0})
        s["expectations"] = exps
        s["arrows"] = sorted(arrows)
        s["failed_count"] = sum(e["verdict"] != "pass" for e in exps)
        s["duration_shown"] = float(s.get("duration_s") or s.get("duration") or 0.0)
        for n in arrows:
            if n in arrow_scen:
                arrow_scen[n].append(s)

    arrow_status = {n: ("notrun" if not arrow_scen[n] else "fail" if n in failed_arrows else "pass")
                    for n in cat.arrows}
    fn_scen = {f: [s for s in scenarios if f in (s.get("functions") or [])] for f in cat.functions}
    fn_status = {f: _worst([s["verdict"] for s in ss]) for f, ss in fn_scen.items()}
    route_scen = {r: [s for s in scenarios if s.get("route") == r] for r in cat.routes}
    route_status = {r: _worst([s["verdict"] for s in ss]) for r, ss in route_scen.items()}

    arrow_rows = []
    for n, a in cat.arrows.items():
        recs = by_arrow.get(n, [])
        arrow_rows.append({
            "n": n, "a": a, "status": arrow_status[n] if a.in_route else "unused",
            "scenarios": arrow_scen[n], "records": recs[:MAX_ARROW_MESSAGES],
            "more": max(0, len(recs) - MAX_ARROW_MESSAGES),
            "routes": [r.id for r in cat.routes.values() if n in r.arrows],
        })

    counts = {v: sum(s["verdict"] == v for s in scenarios) for v in ("pass", "fail", "error")}
    clock = list(evidence.get("clock_log") or [])
    return {
        "lang": lang, "L": LABELS[lang], "cat": cat, "results": results, "evidence": evidence,
        "scenarios": scenarios, "counts": counts, "failures": failures,
        "diagram": diagram.build(cat, arrow_status), "arrow_rows": arrow_rows,
        "fn_status": fn_status, "fn_scen": fn_scen, "route_status": route_status, "route_scen": route_scen,
        "clock": clock[:MAX_CLOCK_ROWS], "clock_more": max(0, len(clock) - MAX_CLOCK_ROWS),
        "versions": evidence.get("versions") or {}, "anchor": evidence.get("anchor") or {},
        "digests": evidence.get("digests") or {}, "masking": evidence.get("masking") or {},
        "line_ja": LINE_JA, "class_ja": CLASS_JA, "fit": diagram.fit,
    }


# ------------------------------------------------------------------------------------------- render

def _finalize(v: Any) -> Any:
    """Every expression's value passes here: mask it (the last line of defence for 個人番号)."""
    if v is None:
        return ""
    if isinstance(v, Markup):
        return Markup(mask_text(str(v)))
    if isinstance(v, str):
        return mask_text(v)
    if isinstance(v, int) and not isinstance(v, bool):
        return mask_text(str(v))
    return v


def _name(obj: Any, lang: str) -> str:
    return str(getattr(obj, lang, None) or getattr(obj, "en", "") or "")


def _title(v: Any, lang: str) -> str:
    """A scenario title: the engine writes {"ja", "en"}; a plain string is accepted too."""
    if isinstance(v, Mapping):
        return str(v.get(lang) or v.get("en") or v.get("ja") or "")
    return "" if v is None else str(v)


def _sut(v: Any) -> str:
    if isinstance(v, Mapping):
        return ", ".join(f"{k}={x}" for k, x in v.items() if x not in (None, ""))
    return "" if v is None else str(v)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True, finalize=_finalize,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["name"] = _name
    env.filters["sut"] = _sut
    env.filters["pick_lang"] = _title
    env.filters["json"] = lambda v: _shown(v)
    return env


def render_html(results: Mapping[str, Any], evidence: Mapping[str, Any], *, lang: str = "ja",
                catalogue: Catalogue | None = None) -> str:
    """The report as one HTML string."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, not {lang!r}")
    cat = catalogue or catalogue_mod.default()
    return environment().get_template("report.html.j2").render(**build_model(results, evidence, cat, lang))


def write_html(results: Mapping[str, Any], evidence: Mapping[str, Any], out_dir: Path, *, lang: str = "ja",
               catalogue: Catalogue | None = None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT_NAME
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render_html(results, evidence, lang=lang, catalogue=catalogue), encoding="utf-8")
    tmp.replace(path)
    return path
