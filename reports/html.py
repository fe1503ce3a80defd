"""report.html: one self-contained page (inline CSS, JS and SVG; no network) rendered with Jinja2.

Why one file: a vendor mails it to a reviewer, who opens it offline. It is rendered from results.json and the
evidence bundle only, so ``juki-harness report`` can render it again (another language) without rerunning.
Every text that reaches the page goes through ``conformance.masking.mask_text`` (Jinja ``finalize``), and the
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
from conformance import verdict as verdict_mod
from conformance.catalogue import Catalogue
from conformance.errors import HarnessError
from conformance.masking import mask_text
from conformance.xmlsafe import NS, NSMAP, parse
from reports import diagram

TEMPLATES = Path(__file__).resolve().parent / "templates"
REPORT_NAME = "report.html"
LANGS = ("ja", "en")
MAX_ARROW_MESSAGES = 200
MAX_CLOCK_ROWS = 500
MAX_EVIDENCE_ITEMS = 20  # evidence items shown per failed expectation
MAX_DETAILED_PER_GROUP = 3  # failed scenarios shown in full per first cause

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
        "not_present": "この電文にありません", "highlighted": "強調表示は存在する最も深い部分",
        "verdict_title": "判定", "groups": "不合格の原因別まとめ（最初の原因ごと）", "cause": "原因",
        "count": "件数", "not_run_title": "未実施（SUT の /contract にない操作を使うシナリオ）",
        "missing_ops": "未実装の操作", "shown_per_group": "詳細は原因ごとに最初の数件のみ表示",
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
        "scenario_error": "Scenario error", "not_present": "not present in this message",
        "highlighted": "highlighted: the deepest part that exists",
        "verdict_title": "Verdict", "groups": "Failures grouped by first cause", "cause": "cause",
        "count": "count", "not_run_title": "Not run (scenarios needing operations the SUT's /contract does not list)",
        "missing_ops": "operations not implemented", "shown_per_group": "details below: the first few per cause",
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

    def __bool__(self) -> bool:
        return bool(self.elements or self.attributes)


def _collect(found: Any) -> _Marks:
    m = _Marks()
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


def _marks(root: etree._Element, xpath: str | None) -> _Marks:
    """What ``xpath`` selects. Checks write XPaths relative to the body root ("j:Result/j:Status"), so a
    relative one is tried there first, then on the envelope and the document."""
    if not xpath:
        return _Marks()
    contexts: list[Any] = []
    if not xpath.startswith("/"):
        body = root.find(f"{{{NS}}}Body")
        if body is not None and len(body):
            contexts.append(body[0])
        contexts.append(root)
    contexts.append(root.getroottree())
    for ctx in contexts:
        try:
            m = _collect(ctx.xpath(xpath, namespaces=NSMAP))
        except (etree.XPathError, TypeError, ValueError):
            continue
        if m:
            return m
    return _Marks()


def _steps(xpath: str) -> list[str]:
    """Location steps of a path, split on "/" outside predicates, parentheses and quotes."""
    steps: list[str] = []
    depth, quote, cur = 0, "", ""
    for ch in xpath:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == "/" and depth == 0:
            steps.append(cur)
            cur = ""
            continue
        cur += ch
    steps.append(cur)
    return steps


@dataclass(frozen=True, slots=True)
class Located:
    """Where an XPath points in a message: ``found`` = the whole path selects something; otherwise ``prefix``
    is the longest leading part that does (where the missing node should have been)."""

    marks: _Marks
    found: bool
    prefix: str | None
    depth: int


def locate(root: etree._Element, xpath: str) -> Located:
    m = _marks(root, xpath)
    steps = _steps(xpath)
    if m:
        return Located(m, True, None, len(steps) + 1)
    for k in range(len(steps) - 1, 0, -1):
        prefix = "/".join(steps[:k])
        if prefix.strip("/") and (pm := _marks(root, prefix)):
            return Located(pm, False, prefix, k)
    return Located(_Marks(), False, None, 0)


def missing(payload: str | None, xpaths: Sequence[str]) -> list[tuple[str, str | None]]:
    """(xpath, deepest existing prefix or None) for each XPath that selects nothing in ``payload``."""
    if not payload:
        return []
    try:
        root = parse(payload)
    except HarnessError:
        return []
    out: list[tuple[str, str | None]] = []
    for xp in xpaths:
        loc = locate(root, xp)
        if not loc.found:
            out.append((xp, loc.prefix))
    return out


def _depth(payload: str | None, xpath: str) -> int:
    """How much of ``xpath`` a payload has (to pick the message an evidence item means)."""
    if not payload:
        return -1
    try:
        return locate(parse(payload), xpath).depth
    except HarnessError:
        return -1


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


def pretty_xml(payload: str | None, xpath: str | Sequence[str] | None = None) -> Markup:
    """The message indented, values masked, the node(s) the XPath(s) select highlighted — or, where a path
    selects nothing, the deepest part of it that exists."""
    if not payload:
        return Markup("")
    try:
        root = parse(payload)
    except HarnessError:
        return Markup(f'<pre class="xml">{escape(mask_text(payload))}</pre>')
    marks = _Marks()
    for xp in [xpath] if isinstance(xpath, str) else list(xpath or []):
        got = locate(root, xp).marks
        marks.elements |= got.elements
        for el, names in got.attributes.items():
            marks.attributes.setdefault(el, set()).update(names)
    out: list[tuple[str, bool]] = []
    _lines(root, 0, marks, {}, out, False)
    body = "\n".join(f'<span class="hl">{line}</span>' if hl else line for line, hl in out)
    return Markup(f'<pre class="xml">{body}</pre>')


# -------------------------------------------------------------------------------------------- model

@dataclass(slots=True)
class _Index:
    """The bundle's records by seq, message id, correlation id and arrow."""

    by_seq: dict[int, dict[str, Any]] = field(default_factory=dict)
    by_id: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    by_corr: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    by_arrow: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def of(cls, evidence: Mapping[str, Any]) -> _Index:
        ix = cls()
        for r in evidence.get("records") or []:
            if isinstance(r.get("seq"), int):
                ix.by_seq[r["seq"]] = r
            if r.get("message_id"):
                ix.by_id.setdefault(str(r["message_id"]), []).append(r)
            if r.get("correlation_id"):
                ix.by_corr.setdefault(str(r["correlation_id"]), []).append(r)
            if isinstance(r.get("arrow"), int):
                ix.by_arrow.setdefault(r["arrow"], []).append(r)
        return ix

    def pick(self, ev: Mapping[str, Any]) -> dict[str, Any] | None:
        """The message an evidence item points at: its seq; else, of the records carrying its message id
        (or answering it), the one that has most of its XPath (the first of equals)."""
        seq = _int(ev.get("seq"))
        if seq is not None and seq in self.by_seq:
            return self.by_seq[seq]
        mid = str(ev.get("message_id") or "")
        candidates = [*self.by_id.get(mid, []), *self.by_corr.get(mid, [])]
        xpath = ev.get("xpath")
        if xpath and len(candidates) > 1:
            depth = {id(r): _depth(r.get("payload"), str(xpath)) for r in candidates}
            return max(candidates, key=lambda r: depth[id(r)])  # max keeps the first of equals
        return candidates[0] if candidates else None


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
    ix = _Index.of(evidence)
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
        route_arrows = set(route.arrows) if route else set()
        arrows = set(route_arrows)
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
            items: list[dict[str, Any]] = []
            messages: dict[int, dict[str, Any]] = {}  # each message once, every XPath on it highlighted
            for ev in evs[:MAX_EVIDENCE_ITEMS]:
                rec = ix.pick(ev)
                expected, actual = _shown(ev.get("expected")), _shown(ev.get("actual"))
                items.append({"ev": ev, "record": rec, "expected": expected, "actual": actual,
                              "same": expected == actual and ev.get("expected") is not None})
                if rec is not None:
                    msg = messages.setdefault(id(rec), {"record": rec, "xpaths": []})
                    if ev.get("xpath") and not items[-1]["same"]:
                        msg["xpaths"].append(str(ev["xpath"]))
            for msg in messages.values():
                msg["xml"] = pretty_xml(msg["record"].get("payload"), msg["xpaths"])
                msg["missing"] = missing(msg["record"].get("payload"), msg["xpaths"])
            failures.append({"scenario": s, "exp": e, "items": items, "messages": list(messages.values()),
                             "more": max(0, len(evs) - len(items))})
        if s["verdict"] != "pass" and not attributed:
            # no failing evidence names an arrow: the route's arrows are suspect (not the tenant's incidental
            # traffic, such as records copied to the addressee system on every change)
            failed_arrows |= route_arrows
            if not any(e["verdict"] != "pass" for e in exps):
                failures.append({"scenario": s, "exp": None, "items": [], "messages": [], "more": 0})
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
        recs = ix.by_arrow.get(n, [])
        arrow_rows.append({
            "n": n, "a": a, "status": arrow_status[n] if a.in_route else "unused",
            "scenarios": arrow_scen[n], "records": recs[:MAX_ARROW_MESSAGES],
            "more": max(0, len(recs) - MAX_ARROW_MESSAGES),
            "routes": [r.id for r in cat.routes.values() if n in r.arrows],
        })

    counts = {v: sum(s["verdict"] == v for s in scenarios) for v in ("pass", "fail", "error")}
    clock = list(evidence.get("clock_log") or [])
    groups = results.get("failure_groups")
    if groups is None:
        groups = verdict_mod.group_failures(scenarios)
    # full detail for the first few scenarios of each cause only: one missing consequence is one story
    detailed = {i for g in groups for i in g["scenarios"][:MAX_DETAILED_PER_GROUP]}
    failures = [f for f in failures if f["scenario"].get("id") in detailed]
    summary = dict(results.get("summary") or {})
    if not summary.get("conformance"):
        total, passed = len(scenarios), counts["pass"]
        summary["conformance"] = verdict_mod.verdict(total=total, passed=passed, partial=False)
        summary.setdefault("total", total)
        summary.setdefault("passed", passed)
    word = str(summary["conformance"])
    return {
        "lang": lang, "L": LABELS[lang], "cat": cat, "results": results, "evidence": evidence,
        "scenarios": scenarios, "counts": counts, "failures": failures,
        "diagram": diagram.build(cat, arrow_status), "arrow_rows": arrow_rows,
        "fn_status": fn_status, "fn_scen": fn_scen, "route_status": route_status, "route_scen": route_scen,
        "clock": clock[:MAX_CLOCK_ROWS], "clock_more": max(0, len(clock) - MAX_CLOCK_ROWS),
        "versions": evidence.get("versions") or {}, "anchor": evidence.get("anchor") or {},
        "digests": evidence.get("digests") or {}, "masking": evidence.get("masking") or {},
        "line_ja": LINE_JA, "class_ja": CLASS_JA, "fit": diagram.fit,
        "verdict_word": word, "verdict_class": {"CONFORMS": "pass", "PARTIAL": "partial"}.get(word, "fail"),
        "headline": verdict_mod.headline(summary, results.get("suite") or {}, lang),
        "groups": groups, "not_run": list(results.get("not_run") or []),
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
    env.filters["json"] = _shown
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
