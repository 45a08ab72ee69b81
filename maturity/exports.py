"""Dated snapshot files a CDO can file, share or feed to other tools (columns documented in docs/exports.md).

`export()` writes, per city and (when no city is chosen) for all cities together, into
`<out_dir>/<YYYY-MM-DD>/<city_key | "all">/`:

- `scores.csv`   — scores and stages per criterion and indicator (the latest scoring at the snapshot time)
- `datasets.csv` — the normalized catalog behind those scores (DatasetRecord fields + a few extras)
- `evidence.json` — the WWC evidence packet: per criterion its status, the evidence (datasets, counts,
  URLs, manual records) and the date
- `report.html`  — one self-contained page with the charts: plotly.js is inlined, so it opens offline and
  makes no request at all; every text that came from a portal is escaped.

Everything is read through `storage` queries; nothing here computes a score.
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import plotly.graph_objects as go

import storage
from connectors.base import RECORD_FIELDS
from layouts import palette
from maturity import csv_writer
from maturity.settings import CityConfig, Settings

if TYPE_CHECKING:  # imported where used, at run time: only the report needs them
    import jinja2
    from markupsafe import Markup

FORMATS = ("html", "csv", "json")
ALL_CITIES_DIR = "all"
SCORE_COLUMNS = ["city_key", "as_of", "criterion", "indicator", "value", "numerator", "denominator", "stage"]
DATASET_EXTRA_COLUMNS = ["city_key", "first_seen", "failing_indicators"]
DATASETS_COLUMNS = list(RECORD_FIELDS) + [c for c in DATASET_EXTRA_COLUMNS if c not in RECORD_FIELDS]
FAILING_SHOWN_HTML = 15  # per indicator in the report; the evidence packet lists them all
STAGE_COLORS = palette.STAGE_COLORS  # the dashboard's own stage colours (one palette module)


@dataclass
class CitySnapshot:
    """Everything exported for one city at one time, read once from storage."""

    city: CityConfig
    as_of: datetime | None  # the scoring time the snapshot shows (None: never scored)
    scores: pd.DataFrame  # SCORE_COLUMNS, that scoring only
    history: pd.DataFrame  # SCORE_COLUMNS, every scoring up to as_of (for the over-time chart)
    catalog: pd.DataFrame
    failing: dict[str, pd.DataFrame]  # indicator -> storage.explain frame
    statuses: pd.DataFrame
    certification: dict
    manual: pd.DataFrame
    runs: pd.DataFrame


def export(settings: Settings, engine: storage.Engine, *, city_key: str | None = None, out_dir: str | Path,
           formats: Sequence[str] = FORMATS, as_of: datetime | None = None) -> list[Path]:
    """Write the dated snapshot files; returns their paths. `as_of` None = the latest scores, dated today (UTC)."""
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown export format(s) {sorted(unknown)}; choose from {FORMATS}")
    generated = datetime.now(UTC)
    stamp = (as_of or generated).date()
    keys = [settings.city(city_key).key] if city_key else [c.key for c in settings.cities]
    snaps = [snapshot(settings, engine, k, as_of=as_of) for k in keys]
    base = Path(out_dir) / stamp.isoformat()
    paths: list[Path] = []
    for snap in snaps:
        paths += _write(base / snap.city.key, [snap], formats, stamp, generated, title=snap.city.name)
    if city_key is None:
        paths += _write(base / ALL_CITIES_DIR, snaps, formats, stamp, generated, title="All cities")
    return paths


def prune(out_dir: str | Path, keep: int) -> list[Path]:
    """Delete all but the `keep` newest dated snapshot folders (`YYYY-MM-DD`) of `out_dir`; returns the deleted.
    Anything else in the folder is left alone."""
    dated = []
    for d in Path(out_dir).iterdir() if Path(out_dir).is_dir() else ():
        try:
            dated.append((date.fromisoformat(d.name), d))
        except ValueError:
            continue
    old = [d for _, d in sorted(dated, reverse=True)[keep:] if d.is_dir()]
    for d in old:
        shutil.rmtree(d)
    return old


def snapshot(settings: Settings, engine: storage.Engine, city_key: str, *,
             as_of: datetime | None = None) -> CitySnapshot:
    from indicators import criteria
    from maturity import pipeline

    city = settings.city(city_key)
    history = _frame(storage.scores(engine, city_key), SCORE_COLUMNS)
    if as_of is not None and len(history):
        history = history[pd.to_datetime(history["as_of"], utc=True) <= pd.Timestamp(as_of)]
    when = None
    scores = history.iloc[0:0]
    if len(history):
        times = pd.to_datetime(history["as_of"], utc=True)
        latest = times.max()
        scores = history[times == latest].reset_index(drop=True)
        when = latest.to_pydatetime()
    catalog = storage.city_catalog(engine, city_key, as_of=when) if when else storage.city_catalog(
        engine, city_key, as_of=as_of)
    indicator_keys = sorted({i for i in scores["indicator"] if i})
    failing = {k: storage.explain(engine, city_key, k, as_of=when) for k in indicator_keys} if when else {}
    rollup = _rollup(scores)
    manual = pipeline.manual_evidence(settings, engine, city_key, as_of=as_of)  # recorded by then
    statuses = criteria.statuses(rollup, manual)
    return CitySnapshot(city=city, as_of=when, scores=scores, history=history.reset_index(drop=True),
                        catalog=catalog, failing=failing, statuses=statuses,
                        certification=criteria.certification_estimate(statuses), manual=manual,
                        runs=storage.runs(engine, city_key=city_key))


def _rollup(scores: pd.DataFrame) -> pd.DataFrame:
    """The stored criterion rows back in `criteria.rollup` shape (criteria.stored_rollup)."""
    from indicators import criteria

    return criteria.stored_rollup(scores)


# --- writers --------------------------------------------------------------------------------------------

def _write(directory: Path, snaps: list[CitySnapshot], formats: Sequence[str], stamp: date,
           generated: datetime, *, title: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    if "csv" in formats:
        paths.append(_write_csv(directory / "scores.csv", scores_table(snaps), SCORE_COLUMNS))
        paths.append(_write_csv(directory / "datasets.csv", datasets_table(snaps), DATASETS_COLUMNS))
    if "json" in formats:
        packet: dict[str, Any]
        if len(snaps) == 1:
            packet = evidence_packet(snaps[0], generated)
        else:
            packet = {"generated_at": _iso(generated), "date": stamp.isoformat(),
                      "cities": [evidence_packet(s, generated) for s in snaps]}
        p = directory / "evidence.json"
        p.write_text(json.dumps(packet, indent=2, ensure_ascii=False, default=_json_default, allow_nan=False),
                     encoding="utf-8")
        paths.append(p)
    if "html" in formats:
        p = directory / "report.html"
        p.write_text(report_html(snaps, title=title, stamp=stamp, generated=generated), encoding="utf-8")
        paths.append(p)
    return paths


# Scores are shown to a tenth of a point (the dashboard shows whole points); more digits (68.68496732026145)
# are noise from the division, not precision. Numerators and denominators are counts (weights may make
# them fractional): two decimals.
SCORE_DECIMALS = 1
COUNT_DECIMALS = 2


def scores_table(snaps: Iterable[CitySnapshot]) -> pd.DataFrame:
    frames = [s.scores[SCORE_COLUMNS] for s in snaps if len(s.scores)]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SCORE_COLUMNS)
    if len(out):
        out = out.assign(value=pd.to_numeric(out["value"], errors="coerce").round(SCORE_DECIMALS),
                         numerator=_rounded_counts(out["numerator"]), denominator=_rounded_counts(out["denominator"]))
    return out


def _rounded_counts(s: pd.Series) -> pd.Series:
    """Counts rounded to COUNT_DECIMALS; whole numbers written without ".0"."""
    n = pd.to_numeric(s, errors="coerce").round(COUNT_DECIMALS)
    return n.map(lambda v: None if pd.isna(v) else int(v) if float(v).is_integer() else float(v)).astype(object)


def datasets_table(snaps: Iterable[CitySnapshot]) -> pd.DataFrame:
    frames = []
    for s in snaps:
        cat = s.catalog.copy()
        fails: dict[str, list[str]] = {}
        for indicator, frame in s.failing.items():
            for sid in frame["source_id"]:
                fails.setdefault(str(sid), []).append(indicator)
        cat["city_key"] = s.city.key
        if "first_seen" not in cat.columns:
            cat["first_seen"] = None
        cat["failing_indicators"] = [tuple(sorted(fails.get(str(sid), ()))) for sid in cat["source_id"]]
        frames.append(cat.reindex(columns=DATASETS_COLUMNS))
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=DATASETS_COLUMNS)


def _write_csv(path: Path, frame: pd.DataFrame, columns: list[str]) -> Path:
    csv_writer.write_csv(frame, path, columns)  # the one writer: cells as the CLI writes them, formula-guarded
    return path


def _iso(v: Any) -> str | None:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    ts = pd.Timestamp(v)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_default(v: Any) -> Any:
    if isinstance(v, (datetime, pd.Timestamp)):
        return _iso(v)
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, (set, frozenset, tuple)):
        return list(v)
    if hasattr(v, "item"):  # numpy scalars
        return _num(v.item())
    return str(v)


def _num(v: Any) -> Any:
    """A JSON-safe number: NaN/None -> None, integral floats stay floats (counts keep their stored type)."""
    if _missing(v):
        return None
    return v.item() if hasattr(v, "item") else v


def _text(v: Any) -> str | None:
    return None if _missing(v) else str(v)


def _missing(v: Any) -> bool:
    """None, NaN, NaT or pd.NA; containers and other objects pd.isna cannot judge are not missing."""
    if v is None:
        return True
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


# --- the WWC evidence packet ------------------------------------------------------------------------------

def evidence_packet(snap: CitySnapshot, generated: datetime) -> dict[str, Any]:
    """For every criterion: status, met, the evidence behind it (indicators with counts and failing datasets
    with URLs, manual records) and the date it stands for."""
    from indicators import REGISTRY

    titles = {i.key: i.title for i in REGISTRY}
    when = _iso(snap.as_of)
    crit_rows = {r["criterion"]: r for r in snap.scores[snap.scores["indicator"] == ""].to_dict("records")}
    criteria_out = []
    for st in snap.statuses.to_dict("records"):
        cid = st["criterion"]
        ind_rows = snap.scores[(snap.scores["criterion"] == cid) & (snap.scores["indicator"] != "")]
        indicators = []
        for r in ind_rows.to_dict("records"):
            fail = snap.failing.get(r["indicator"], pd.DataFrame(columns=["source_id", "title", "reason",
                                                                          "landing_url"]))
            indicators.append({
                "indicator": r["indicator"], "title": titles.get(r["indicator"]),
                "value": _num(r["value"]), "numerator": _num(r["numerator"]),
                "denominator": _num(r["denominator"]), "failing_count": int(len(fail)),
                "failing": [{"source_id": _text(f.get("source_id")), "title": _text(f.get("title")),
                             "reason": _text(f.get("reason")), "landing_url": _text(f.get("landing_url"))}
                            for f in fail.to_dict("records")],
            })
        manual = snap.manual[snap.manual["criterion"] == cid] if len(snap.manual) else snap.manual
        crow = crit_rows.get(cid, {})
        criteria_out.append({
            "criterion": cid, "practice": _text(st.get("practice")), "title": _text(st.get("title")),
            "status": _text(st.get("status")), "met": bool(st.get("met")) if st.get("met") is not None else None,
            "met_if_confirmed": bool(st.get("met_if_confirmed")) if st.get("met_if_confirmed") is not None else None,
            "metadata": _text(st.get("metadata")),
            "evidence": _text(st.get("evidence")),
            "value": _num(crow.get("value")), "stage": _text(crow.get("stage")),
            "date": when,
            "indicators": indicators,
            "manual": [{k: _text(m.get(k)) for k in ("url", "date", "note", "source")}
                       for m in manual.to_dict("records")],
        })
    cat = snap.catalog
    by_portal = cat.groupby("portal_key").size().to_dict() if len(cat) else {}
    return {
        "city_key": snap.city.key, "city_name": snap.city.name, "date": when, "generated_at": _iso(generated),
        "certification_estimate": {k: _num(v) if not isinstance(v, (list, dict, str)) else v
                                   for k, v in snap.certification.items()},
        "catalog": {"datasets": int(len(cat)), "by_portal": {str(k): int(v) for k, v in by_portal.items()}},
        "portals": _portal_runs(snap),
        "criteria": criteria_out,
    }


def _portal_runs(snap: CitySnapshot) -> list[dict[str, Any]]:
    out = []
    for p in snap.city.portals:
        runs = snap.runs[snap.runs["portal_key"] == p.key] if len(snap.runs) else snap.runs
        if snap.as_of is not None and len(runs):
            runs = runs[pd.to_datetime(runs["as_of"], utc=True) <= pd.Timestamp(snap.as_of)]
        last = runs.iloc[0].to_dict() if len(runs) else {}
        out.append({"portal_key": p.key, "kind": p.kind, "url": p.url,
                    "last_run": _iso(last.get("as_of")), "status": _text(last.get("status")),
                    "items": _num(last.get("items")), "runs": int(len(runs))})
    return out


# --- the HTML report --------------------------------------------------------------------------------------

def report_html(snaps: list[CitySnapshot], *, title: str, stamp: date, generated: datetime,
                print_view: bool = False, back_href: str = "/",
                drill_href: Callable[[str, str], str] | None = None) -> str:
    """A self-contained page from the Jinja2 template layouts/templates/report.html.j2 (autoescaped): inline CSS,
    plotly.js inlined once, no external URL loaded. `print_view`: the dashboard's printable city page, the
    same template without the charts (their numbers are in the tables), single column, a Print button.
    `drill_href(criterion, indicator)`: where every failing dataset of an indicator is listed (the print view links
    the city page's drill-down; the exported report points to the evidence.json beside it)."""
    from markupsafe import Markup

    figures: list[str] = []

    def fig_html(fig: go.Figure) -> Markup:
        # The first figure carries plotly.js inline (include_plotlyjs=True); later ones reuse it.
        first = not figures
        h = fig.to_html(full_html=False, include_plotlyjs=True if first else False,
                        config={"displaylogo": False, "responsive": True})
        figures.append(h)
        return Markup(h)  # noqa: S704 - our own figure HTML; portal text in it is escaped by Plotly

    comparison = fig_html(_comparison_figure(snaps)) if len(snaps) > 1 and not print_view else None
    cities = [_city_context(s, None if print_view else fig_html) for s in snaps]
    if drill_href is not None:
        for c in cities:
            for i in c.get("indicators", ()):
                i["all_href"] = drill_href(i["criterion"], i["indicator"])
    return _template().render(
        title=title, stamp=stamp.isoformat(), generated=_iso(generated), print_view=print_view,
        back_href=back_href, comparison=comparison, cities=cities,
        cities_scored=any(c["scored"] for c in cities),
        stages=[{"name": st, "color": palette.STAGE_COLORS[st], "text": palette.STAGE_TEXT_COLORS[st]}
                for st in palette.STAGES]) + "\n"


def _template() -> jinja2.Template:
    import jinja2

    global _TEMPLATE
    if _TEMPLATE is None:
        env = jinja2.Environment(loader=jinja2.PackageLoader("layouts", "templates"), autoescape=True,
                                 trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
        _TEMPLATE = env.get_template("report.html.j2")
    return _TEMPLATE


_TEMPLATE: jinja2.Template | None = None


def _safe_url(v: Any) -> str | None:
    """Only http(s) URLs become links (a `javascript:` URL from a portal stays text)."""
    u = _text(v)
    return u if u and (u.startswith("https://") or u.startswith("http://")) else None


def _fmt(v: Any, digits: int = 1) -> str:
    n = _num(v)
    if n is None:
        return "–"  # as the dashboard shows a missing score
    if isinstance(n, float):
        return f"{n:.{digits}f}"
    return str(n)


def _city_context(s: CitySnapshot, fig_html: Callable[[go.Figure], Markup] | None) -> dict[str, Any]:
    """What the template shows of one city (plain values; the template escapes them)."""
    from indicators import REGISTRY

    out: dict[str, Any] = {"key": s.city.key, "name": s.city.name, "scored": s.as_of is not None}
    if s.as_of is None:
        return out
    titles = {i.key: i.title for i in REGISTRY}
    figures = []
    if fig_html is not None:
        figures.append(fig_html(_criteria_figure(s)))
        if s.history["as_of"].nunique() > 1:
            figures.append(fig_html(_history_figure(s)))
        if len(s.runs):
            figures.append(fig_html(_runs_figure(s)))
    crit = {r["criterion"]: r for r in s.scores[s.scores["indicator"] == ""].to_dict("records")}
    criteria = []
    for st in s.statuses.to_dict("records"):
        c = crit.get(st["criterion"], {})
        stage = _text(c.get("stage"))
        value = _num(c.get("value"))
        criteria.append({"criterion": st["criterion"], "title": _text(st.get("title")) or "",
                         "status": _text(st.get("status")) or "", "met": bool(st.get("met")),
                         "value": value, "score": _fmt(value, 0), "stage": stage,
                         "color": palette.STAGE_COLORS.get(stage or "", palette.NO_SCORE_COLOR),
                         "text": palette.STAGE_TEXT_COLORS.get(stage or "", "#000"),
                         "evidence": _text(st.get("evidence")) or ""})
    indicators = []
    for r in s.scores[s.scores["indicator"] != ""].to_dict("records"):
        fail = s.failing.get(r["indicator"])
        n_fail = 0 if fail is None else len(fail)
        rows = [] if fail is None else [
            {"url": _safe_url(f.get("landing_url")), "label": _text(f.get("title") or f.get("source_id")) or "",
             "reason": _text(f.get("reason")) or ""} for f in fail.head(FAILING_SHOWN_HTML).to_dict("records")]
        indicators.append({"criterion": r["criterion"], "indicator": r["indicator"],
                           "title": titles.get(r["indicator"], r["indicator"]),
                           "score": _fmt(r["value"], 0), "numerator": _fmt(r["numerator"], 0),
                           "denominator": _fmt(r["denominator"], 0), "n_fail": n_fail, "failing": rows,
                           "more": max(0, n_fail - FAILING_SHOWN_HTML), "all_href": None})
    manual = [{"criterion": _text(m.get("criterion")) or "", "url": _text(m.get("url")) or "",
               "url_safe": _safe_url(m.get("url")), "date": _text(m.get("date")) or "",
               "note": _text(m.get("note")) or "", "source": _text(m.get("source")) or ""}
              for m in (s.manual.to_dict("records") if len(s.manual) else [])]
    out.update(as_of=_iso(s.as_of), datasets=len(s.catalog), estimate=_text(s.certification.get("label")) or "",
               figures=figures, criteria=criteria, indicators=indicators, manual=manual)
    return out


def _criteria_figure(s: CitySnapshot) -> go.Figure:
    crit = s.scores[s.scores["indicator"] == ""].sort_values("criterion")
    colors = [STAGE_COLORS.get(str(st), palette.NO_SCORE_COLOR) for st in crit["stage"]]
    fig = go.Figure(go.Bar(x=crit["criterion"], y=crit["value"], marker_color=colors,
                           text=crit["stage"], hovertemplate="%{x}: %{y:.1f} (%{text})<extra></extra>"))
    fig.update_layout(title=f"Criterion scores — {s.city.name}", yaxis={"range": [0, 100], "title": "score"},
                      height=360, margin={"t": 50, "b": 40})
    return fig


def _suspect_dates(s: CitySnapshot) -> set[pd.Timestamp]:
    """Run dates where every run of the city was suspect (a short crawl): their scores are not a trend."""
    if not len(s.runs):
        return set()
    good = s.runs[s.runs["status"].isin(["ok", "suspect"])].copy()
    good["as_of"] = pd.to_datetime(good["as_of"], utc=True)
    flags = good.groupby("as_of")["status"].agg(lambda st: set(st) == {"suspect"})
    return set(flags[flags].index)


def _history_figure(s: CitySnapshot) -> go.Figure:
    crit = s.history[s.history["indicator"] == ""].copy()
    crit["as_of"] = pd.to_datetime(crit["as_of"], utc=True)
    skipped = _suspect_dates(s)
    crit = crit[~crit["as_of"].isin(skipped)]
    fig = go.Figure()
    for cid, g in crit.sort_values("as_of").groupby("criterion"):
        fig.add_trace(go.Scatter(x=g["as_of"], y=g["value"], mode="lines+markers", name=str(cid)))
    note = f" (skipping {len(skipped)} suspect run date(s))" if skipped else ""
    fig.update_layout(title=f"Criterion scores over time — {s.city.name}{note}", yaxis={"range": [0, 100]},
                      height=360, margin={"t": 50, "b": 40})
    return fig


def _runs_figure(s: CitySnapshot) -> go.Figure:
    runs = s.runs[s.runs["status"].isin(["ok", "suspect"])].copy()
    runs["as_of"] = pd.to_datetime(runs["as_of"], utc=True)
    fig = go.Figure()
    for portal_key, g in runs.sort_values("as_of").groupby("portal_key"):
        fig.add_trace(go.Scatter(x=g["as_of"], y=g["items"], mode="lines+markers", name=str(portal_key)))
        sus = g[g["status"] == "suspect"]
        if len(sus):
            fig.add_trace(go.Scatter(x=sus["as_of"], y=sus["items"], mode="markers", name="suspect run",
                                     marker={"color": "#d95f0e", "size": 13, "symbol": "x"}))
    fig.update_layout(title="Datasets per harvest (x = suspect: the crawl came back sharply short)",
                      height=300, margin={"t": 50, "b": 40}, yaxis={"rangemode": "tozero"})
    return fig


def _comparison_figure(snaps: list[CitySnapshot]) -> go.Figure:
    rows = []
    for s in snaps:
        for r in s.scores[s.scores["indicator"] == ""].to_dict("records"):
            rows.append({"city": s.city.name, "criterion": r["criterion"], "value": _num(r["value"])})
    frame = pd.DataFrame(rows, columns=["city", "criterion", "value"])
    pivot = frame.pivot_table(index="city", columns="criterion", values="value", aggfunc="first") \
        if len(frame) else pd.DataFrame()
    fig = go.Figure(go.Heatmap(z=pivot.values, x=list(pivot.columns), y=list(pivot.index), zmin=0, zmax=100,
                               colorscale="RdYlGn", hovertemplate="%{y} · %{x}: %{z:.1f}<extra></extra>"))
    fig.update_layout(title="Criterion scores by city", height=120 + 40 * max(1, len(pivot)),
                      margin={"t": 50, "b": 40})
    return fig


def _frame(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return frame.reindex(columns=columns) if len(frame) else pd.DataFrame(columns=columns)
