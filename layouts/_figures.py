"""Pure builders: DataFrames shaped as `docs/internals.md` says in, Plotly figures and plain tables out.

No I/O, no clock, no Dash callbacks: every page hands a storage query's result to one of these, so they
are tested on small hand-made frames. Portal text (titles, departments) only ever lands in figure text
fields and grid cells, which Plotly and AG Grid render as text.
"""
from __future__ import annotations

import functools
import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from layouts import palette
from layouts._words import cadence, criterion_label

# The colours live in palette.py (shared with the exported report); the names stay here for the pages.
STAGES = palette.STAGES
STAGE_COLORS = palette.STAGE_COLORS
NO_SCORE_COLOR = palette.NO_SCORE_COLOR
SERIES_COLORS = palette.SERIES_COLORS
RUN_STATUS_COLORS = palette.RUN_STATUS_COLORS

FRESHNESS_STATES: tuple[str, ...] = ("fresh", "due", "overdue", "delinquent", "no schedule", "unknown")

FONT = dict(family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size=13)


GRID = "#E5E5E5"


def _base_layout(fig: go.Figure, *, height: int | None = None, title: str | None = None) -> go.Figure:
    # The bare "none" template styled by hand: a named template like "plotly_white" is deep-copied into
    # every figure, which cost ~30 ms a figure (most of a city page's callback time).
    fig.update_layout(template="none", font=FONT, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      height=height, title=dict(text=title, x=0, xanchor="left") if title else None,
                      plot_bgcolor="white", paper_bgcolor="white", colorway=list(SERIES_COLORS))
    # ticklabeloverflow "allow": automargin already makes room for the labels; the default ("hide past div" on
    # date and number axes) measures every tick label's box again after each draw (~25-100 ms of a city page's
    # history chart in a Chrome profile)
    axes = dict(gridcolor=GRID, zeroline=False, automargin=True, linecolor=GRID, ticklabeloverflow="allow")
    fig.update_xaxes(**axes)
    fig.update_yaxes(**axes)
    return fig


def empty_figure(message: str, *, height: int = 240) -> go.Figure:
    """A blank figure that says why it is blank (instead of an empty grid of axes)."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font=dict(size=14, color="#555"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _base_layout(fig, height=height)


def plot_text(text: object) -> str:
    """Portal text for a Plotly label: Plotly reads a few HTML tags in text (<a>, <b>, <br>…), so escape them."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def stage_rank(stage: str | None) -> int:
    """0 ("not evident") … 4 ("leading"); -1 for no stage (criterion not scored)."""
    return STAGES.index(stage) if stage in STAGES else -1


def _utc(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, utc=True)


def criterion_rows(scores: pd.DataFrame) -> pd.DataFrame:
    """The criterion roll-up rows of a `storage.scores`/`latest_scores` frame (indicator == "")."""
    if scores.empty:
        return scores.copy()
    return scores[scores["indicator"].fillna("") == ""].copy()


def indicator_rows(scores: pd.DataFrame) -> pd.DataFrame:
    if scores.empty:
        return scores.copy()
    return scores[scores["indicator"].fillna("") != ""].copy()


OVERALL = "Overall"  # the overall score's row among criteria (Compare): first, before the WWC ids


def criteria_order(criteria: Iterable[str]) -> list[str]:
    """WWC ids in reading order: by practice prefix, then number (DM2 before DM10); OVERALL first."""
    def key(c: str) -> tuple[str, int]:
        if c == OVERALL:
            return ("", 0)
        m = re.match(r"([A-Z]+)(\d+)$", c or "")
        return (m.group(1), int(m.group(2))) if m else (c or "", 0)
    return sorted(set(criteria), key=key)


# --- overview -------------------------------------------------------------------------------------------

def city_score_history(history: pd.DataFrame) -> pd.DataFrame:
    """Overall score and stage per (city_key, as_of) of the criterion roll-up rows scored at that time, by the one
    rule of `indicators.criteria.overall_score` (mean over the criteria with indicators, a missing one 0)."""
    from indicators import criteria

    rows = criterion_rows(history)
    if rows.empty:
        return pd.DataFrame(columns=["city_key", "as_of", "value", "stage"])
    rows = rows.assign(as_of=_utc(rows["as_of"]))
    out = criteria.overall_frame(rows, ["city_key", "as_of"])
    return out.sort_values(["city_key", "as_of"], ignore_index=True)


def flagged_overall(flagged: pd.DataFrame) -> pd.DataFrame:
    """The overall score of each flagged scoring (storage.scores rows with `flag`: a partial or empty crawl), by the
    same rule as `city_score_history`: city_key, as_of, value, stage, flag. Stored, never on a line."""
    totals = city_score_history(flagged)
    if totals.empty:
        return totals.assign(flag=None)
    rows = criterion_rows(flagged)
    flags = rows.assign(as_of=_utc(rows["as_of"])).drop_duplicates(["city_key", "as_of"])[["city_key", "as_of",
                                                                                             "flag"]]
    return totals.merge(flags, on=["city_key", "as_of"], how="left")


def flagged_points(flagged: pd.DataFrame | None) -> list[tuple[pd.Timestamp, float, str]]:
    """(as_of, value, flag) of the flagged scores with a value, oldest first (for hollow markers and their hover)."""
    if flagged is None or flagged.empty:
        return []
    f = flagged.dropna(subset=["value"]).sort_values("as_of")
    return [(pd.Timestamp(t), float(v), str(flag or "partial"))
            for t, v, flag in zip(f["as_of"], f["value"], f["flag"], strict=True)]


def overall_ranks(totals: pd.DataFrame) -> pd.DataFrame:
    """Each scored city's rank by its latest overall score (`city_score_history` rows): city_key, score, rank, of.

    The score is ranked as the overview shows it (one decimal), highest first; cities with the same score share
    a rank and the next rank skips (1, 2, 2, 4); `of` = the number of scored cities. Cities whose latest overall
    score is missing (nothing measurable) are not ranked and not counted."""
    if totals.empty:
        return pd.DataFrame(columns=["city_key", "score", "rank", "of"])
    last = totals.sort_values("as_of").groupby("city_key").tail(1).dropna(subset=["value"])
    score = last["value"].astype(float).round(1)
    rank = score.rank(method="min", ascending=False).astype(int)
    out = pd.DataFrame({"city_key": last["city_key"].to_numpy(), "score": score.to_numpy(), "rank": rank.to_numpy(),
                        "of": len(last)})
    return out.sort_values(["rank", "city_key"], ignore_index=True)


def rank_text(ranks: pd.DataFrame, key: str) -> str | None:
    """"rank 2 of 4 scored cities" ("rank 2 (tied) of 4 …" when another city shares it); None when not ranked."""
    row = ranks[ranks["city_key"] == key]
    if row.empty:
        return None
    r, n = int(row["rank"].iloc[0]), int(row["of"].iloc[0])
    tied = " (tied)" if int((ranks["rank"] == r).sum()) > 1 else ""
    return f"rank {r}{tied} of {n} scored cit{'y' if n == 1 else 'ies'}"


def with_overall(scores: pd.DataFrame) -> pd.DataFrame:
    """The criterion roll-up rows of `scores` plus an OVERALL row per (city_key, as_of): the overall score and
    stage of that scoring by `city_score_history` (the one rule), so a chart shows it like a criterion."""
    crit = criterion_rows(scores)
    totals = city_score_history(crit)
    if totals.empty:
        return crit
    crit = crit.assign(as_of=_utc(crit["as_of"]))
    extra = totals.assign(criterion=OVERALL, indicator="")
    return pd.concat([crit, extra], ignore_index=True)


def change_since(series: pd.DataFrame, days: int) -> float | None:
    """Latest value minus the value at the last time at or before (latest time − `days`).

    `series` has columns as_of, value for ONE series. None when history does not reach that far back.
    """
    s = series.dropna(subset=["value"]).sort_values("as_of")
    if s.empty:
        return None
    latest_t = s["as_of"].iloc[-1]
    before = s[s["as_of"] <= latest_t - timedelta(days=days)]
    if before.empty:
        return None
    return float(s["value"].iloc[-1] - before["value"].iloc[-1])


# How near a scoring must be to "30 / 90 days before the latest" to stand for that date: a weekly or fortnightly
# harvest always leaves one within these many days; a city harvested once in two years does not, and then the
# page says "no run near that date" instead of comparing runs 19 months apart (issue 12, item 3).
NEAR_DAYS: dict[int, int] = {30: 10, 90: 21}


def comparison_point(series: pd.DataFrame, days: int, near_days: int | None = None) -> dict | None:
    """The change of one overall-score series since the scoring nearest to (latest time − `days`).

    `series` has columns as_of, value (complete runs only: storage leaves flagged scores out). The point is the
    scoring nearest the target date, earlier than the latest one and at most `near_days` (default
    NEAR_DAYS[days]) away from it; None when there is none. Returns {as_of, days (whole days before the
    latest), change (latest − that value)}.
    """
    near = NEAR_DAYS.get(days, days // 3) if near_days is None else near_days
    s = series.dropna(subset=["value"]).sort_values("as_of")
    if len(s) < 2:
        return None
    times = _utc(s["as_of"])
    latest_t = times.iloc[-1]
    target = latest_t - pd.Timedelta(days=days)
    off = (times.iloc[:-1] - target).abs()
    if off.min() > pd.Timedelta(days=near):
        return None
    i = int(np.argmin(off.to_numpy()))
    return {"as_of": times.iloc[i], "days": int((latest_t - times.iloc[i]) / pd.Timedelta(days=1)),
            "change": round(float(s["value"].iloc[-1] - s["value"].iloc[i]), 1)}


def change_text(point: dict | None) -> str:
    """"+3.2 since 2022-04-23, 91 days" or "no run near that date"."""
    if point is None:
        return "no run near that date"
    return f"{point['change']:+.1f} since {point['as_of']:%Y-%m-%d}, {point['days']} days"


def overview_table(cities: pd.DataFrame, history: pd.DataFrame, runs: pd.DataFrame,
                   flagged: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per configured city: overall stage and score, change since 30 / 90 days, last harvest.

    `cities` = storage.cities, `history` = storage.scores rows of the cities (criterion roll-up rows are
    used), `runs` = storage.runs rows, newest first. Changes are measured back from each city's latest scored
    run to the scoring nearest 30 / 90 days before it (`comparison_point`; `since_*` says which, in words);
    `series` is the overall score over all complete runs (as_of, value) for the trend line; `flagged_series` the
    overall score of each flagged scoring (`flagged_overall` of `flagged`, storage.scores rows with a flag), drawn
    beside the line as hollow points, never on it.
    """
    cols = ["city_key", "city", "stage", "score", "change_30d", "change_90d", "since_30d", "since_90d", "series",
            "flagged_series", "scored_at", "last_harvest", "harvest_status", "harvest_error"]
    out = pd.DataFrame({"city_key": cities["key"].to_numpy(), "city": cities["name"].to_numpy()})
    totals = city_score_history(history)
    if len(totals):
        last = totals.groupby("city_key").tail(1).set_index("city_key")
        out["score"] = out["city_key"].map(last["value"].round(1))
        out["scored_at"] = out["city_key"].map(last["as_of"])
        points = {k: {days: comparison_point(g, days) for days in NEAR_DAYS} for k, g in totals.groupby("city_key")}
        for days in NEAR_DAYS:
            out[f"change_{days}d"] = out["city_key"].map(
                lambda k, d=days: (points.get(k, {}).get(d) or {}).get("change"))
            out[f"since_{days}d"] = out["city_key"].map(lambda k, d=days: change_text(points[k][d])
                                                        if k in points else None)
        out["series"] = out["city_key"].map({k: g[["as_of", "value"]].reset_index(drop=True)
                                            for k, g in totals.groupby("city_key")})
        out["stage"] = out["city_key"].map(last["stage"])  # the stage of the same overall score (one rule)
    marked = flagged_overall(flagged) if flagged is not None and len(flagged) else pd.DataFrame()
    if len(marked):
        out["flagged_series"] = out["city_key"].map({k: g[["as_of", "value", "flag"]].reset_index(drop=True)
                                                    for k, g in marked.groupby("city_key")})
    if len(runs):
        newest = runs.drop_duplicates("city_key").set_index("city_key")
        when = newest["finished_at"].where(newest["finished_at"].notna(), newest["started_at"])
        if "source" in newest:  # an imported snapshot (backfill, demo) is dated by what it records
            when = when.where(newest["source"] != "import", newest["as_of"])
        out["last_harvest"] = out["city_key"].map(when)
        out["harvest_status"] = out["city_key"].map(newest["status"])
        err = newest["error"].where(newest["error"].notna() & (newest["error"].astype(str) != ""),
                                    newest["suspect_reason"])
        out["harvest_error"] = out["city_key"].map(err)
    for c in cols:
        if c not in out:
            out[c] = None
    out = out[cols].astype(object)
    return out.where(out.notna(), None)


def overall_summary(history: pd.DataFrame) -> dict | None:
    """One city's overall score and stage at its latest scoring, the series behind its trend line and the change
    since about 30 and 90 days (`comparison_point`); None when it was never scored. `history` = the city's
    criterion roll-up rows (storage.criterion_scores: complete runs only)."""
    totals = city_score_history(history)
    if totals.empty:
        return None
    last = totals.iloc[-1]
    series = totals[["as_of", "value"]].reset_index(drop=True)
    return {"score": round(float(last["value"]), 1), "stage": last["stage"], "as_of": last["as_of"],
            "series": series, **{f"since_{d}d": change_text(comparison_point(series, d)) for d in NEAR_DAYS}}


# The latest complete harvest of a portal may be this many schedule intervals old before the pages say its data
# is old: one missed run is ordinary (a portal down for a night); two in a row mean the harvest has stopped.
STALE_INTERVALS = 2
SCHEDULE_FIRES = 12  # fires of a cron line sampled for its interval: covers a line that fires on a few weekdays


def schedule_interval(expr: str) -> timedelta | None:
    """The longest gap between consecutive fires of a portal's cron line, read as the scheduler reads it
    (`maturity.scheduler.cron_trigger`), sampled from a fixed date (no clock); None for a line that does not fire.
    "0 4 * * *" -> 1 day, "0 3 * * 1" -> 7 days, "0 4 1 * *" -> 31 days."""
    return _schedule_interval(expr)


@functools.lru_cache(maxsize=256)
def _schedule_interval(expr: str) -> timedelta | None:
    from maturity.scheduler import cron_trigger

    trigger = cron_trigger(expr)
    t = trigger.get_next_fire_time(None, datetime(2024, 1, 1, tzinfo=UTC))
    gaps = []
    for _ in range(SCHEDULE_FIRES):
        if t is None:
            break
        nxt = trigger.get_next_fire_time(t, t + timedelta(seconds=1))
        if nxt is None:
            break
        gaps.append(nxt - t)
        t = nxt
    return max(gaps) if gaps else None


def stale_portals(runs: pd.DataFrame, schedules: Mapping[str, str], now: datetime,
                  recorded: Collection[tuple[str, pd.Timestamp]] = ()) -> pd.DataFrame:
    """Portals whose latest complete run (as_of: when its catalog was seen) is older than STALE_INTERVALS times
    their schedule's interval at `now`: portal_key, city_key, last_complete, interval, age, demo. A portal with no
    complete run, or not in `schedules`, is not listed (the failing and "no harvest yet" states say so).
    `runs` = storage.runs rows; `schedules` = portal key -> cron line from the config; `recorded` = (portal key,
    as_of) of the bundled demo's snapshots: `demo` is True when the latest complete run is one of them (an import
    of that portal dated exactly so), i.e. the data is old because it is the demo, not because harvests stopped."""
    cols = ["portal_key", "city_key", "last_complete", "interval", "age", "demo"]
    demo = {(str(k), pd.Timestamp(t)) for k, t in recorded}
    if runs.empty:
        return pd.DataFrame(columns=cols)
    complete = runs["complete"].astype(bool) if "complete" in runs else runs["status"] == "ok"
    done = runs[complete & runs["portal_key"].isin(list(schedules))]
    if done.empty:
        return pd.DataFrame(columns=cols)
    done = done.assign(as_of=_utc(done["as_of"]))
    last = done.sort_values("as_of").groupby("portal_key").tail(1)
    rows = []
    r: Any  # an itertuples row
    for r in last.sort_values(["city_key", "portal_key"]).itertuples(index=False):
        interval = schedule_interval(schedules[r.portal_key])
        age = pd.Timestamp(now) - r.as_of
        if interval is not None and age > STALE_INTERVALS * interval:
            imported = getattr(r, "source", "import") == "import"
            rows.append({"portal_key": r.portal_key, "city_key": r.city_key, "last_complete": r.as_of,
                         "interval": interval, "age": age, "demo": imported and (r.portal_key, r.as_of) in demo})
    return pd.DataFrame(rows, columns=cols)


def duration_words(d: timedelta) -> str:
    """"1 day", "7 days", "6 hours", "2 years" (whole units, the largest that fits)."""
    days = d.days
    if days >= 730:
        return f"{days // 365} years"
    if days >= 60:
        return f"{days // 30} months"
    if days >= 1:
        return "1 day" if days == 1 else f"{days} days"
    hours = max(1, int(d.total_seconds() // 3600))
    return "1 hour" if hours == 1 else f"{hours} hours"


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def stage_matrix(latest: pd.DataFrame, cities: pd.DataFrame, titles: Mapping[str, str] | None = None) -> go.Figure:
    """Criteria (rows) × cities (columns), each cell coloured by stage and labelled with its score.

    `latest` = storage.latest_scores (criterion rows are used), `cities` = storage.cities (column order).
    Drawn as one horizontal bar per cell (row: the criterion on a category axis; column j: the span j..j+1 of a
    numeric axis labelled with the city names), not as a heatmap: plotly.js's *basic* bundle (bar, pie, scatter)
    is then every trace the dashboard draws, and it evaluates in a tenth of the CPU of the bundle with heatmaps
    (maturity/plotlyjs.py). A click gives the cell's criterion as `y` and its city key as `customdata`.
    """
    crit = criterion_rows(latest)
    if crit.empty or cities.empty:
        return empty_figure("No scores yet: run a harvest (maturity harvest) or load the demo (maturity demo).")
    criteria = criteria_order(crit["criterion"])
    names = name_map(cities)
    keys = [k for k in cities["key"]]
    first = crit.drop_duplicates(["criterion", "city_key"], keep="last")
    stage = first.pivot(index="criterion", columns="city_key", values="stage").reindex(index=criteria, columns=keys)
    value = first.pivot(index="criterion", columns="city_key", values="value").reindex(index=criteria, columns=keys)
    y, base, color, text, hover, key_of = [], [], [], [], [], []
    for c in criteria:
        for j, (k, st, v) in enumerate(zip(keys, stage.loc[c], value.loc[c], strict=False)):
            scored = isinstance(st, str)
            y.append(c)
            base.append(j + CELL_GAP / 2)
            key_of.append(k)
            # a cell without a value is left empty (no colour): the grey of "not evident" is a real 0
            color.append(STAGE_COLORS[st] if scored and st in STAGE_COLORS and not pd.isna(v) else EMPTY_CELL)
            text.append("" if pd.isna(v) else f"{v:.0f}")
            where = f"{names.get(k, k)} · {plot_text(criterion_label(c, titles or {}))}: "
            hover.append(where + ("not scored" if not scored else
                                  "no value (nothing to measure)" if pd.isna(v) else f"{v:.0f} ({st})"))
    fig = go.Figure(go.Bar(
        orientation="h", y=y, x=[1 - CELL_GAP] * len(y), base=base, width=1 - CELL_GAP * 2, marker_color=color,
        text=text, textposition="inside", insidetextanchor="middle", textangle=0,
        hovertext=hover, hovertemplate="%{hovertext}<extra></extra>",
        customdata=key_of,  # the city key of each cell: a click opens /city/<key>?criterion=<y>
    ))
    # the criterion's name beside its id (the axis values stay ids: a click opens /city/<key>?criterion=<id>)
    fig.update_yaxes(autorange="reversed", type="category", tickvals=criteria, showgrid=False, showline=False,
                     ticktext=[plot_text(criterion_label(c, titles or {}, width=LABEL_CHARS)) for c in criteria])
    fig.update_xaxes(side="top", range=[0, len(keys)], tickvals=[j + 0.5 for j in range(len(keys))],
                     ticktext=[names.get(k, k) for k in keys], showgrid=False, showline=False, ticks="")
    _base_layout(fig, height=max(260, 34 * len(criteria) + 120))
    # room for the criterion labels and the city names up front: automargin then finds nothing to widen and
    # plotly draws the matrix once instead of twice (about half its first-draw time, measured in Chromium);
    # a score that does not fit its cell (a phone) is not shown: its hover has it
    return fig.update_layout(margin=dict(l=label_room(fig.layout.yaxis.ticktext), t=TOP_LABEL_PX), bargap=0,
                             uniformtext=dict(mode="hide", minsize=FONT["size"]))


CELL_GAP = 0.03  # the white between two cells, as a share of a cell (2-4 px at 1440 px)
EMPTY_CELL = "rgba(0,0,0,0)"  # no value: no colour at all (the stage legend's "no value" swatch)


# The width of FONT's text, per character, at its widest in Chromium (34 characters of criterion label took
# 276 px); an estimate only: automargin still widens a margin a label needs more of (at the cost of a second
# draw), so a wrong guess costs a little speed or a few pixels of space, never a cut label.
CHAR_PX = 8.2
TOP_LABEL_PX = 36  # one line of FONT above the plot (automargin grows it where the names tilt, on a phone)


def label_room(labels: Iterable[str] | None) -> int:
    """Pixels of margin for the longest of `labels` beside an axis (FONT; CHAR_PX per character, plus the gap)."""
    return math.ceil(max((len(t) for t in labels or ()), default=0) * CHAR_PX) + 10


LABEL_CHARS = 34  # a criterion label on an axis: id and the start of its name, the whole name in the hover


# --- city -----------------------------------------------------------------------------------------------

def criterion_cards(history: pd.DataFrame) -> pd.DataFrame:
    """One row per criterion scored at the city's latest time: value, stage, change since 90 days, sparkline series.

    `history` = storage.scores(city_key=…).
    """
    crit = criterion_rows(history)
    cols = ["criterion", "value", "stage", "change_90d", "as_of", "series"]
    if crit.empty:
        return pd.DataFrame(columns=cols)
    crit = crit.assign(as_of=_utc(crit["as_of"]), value=pd.to_numeric(crit["value"], errors="coerce"))
    current = crit.loc[crit["as_of"] == crit["as_of"].max(), "criterion"]  # criteria of the latest scoring
    rows = []
    for c in criteria_order(current):
        s = crit[crit["criterion"] == c].sort_values("as_of")
        last = s.iloc[-1]
        rows.append({"criterion": c, "value": None if pd.isna(last["value"]) else float(last["value"]),
                     "stage": last["stage"], "change_90d": _round(change_since(s, 90)),
                     "as_of": last["as_of"], "series": s[["as_of", "value"]].reset_index(drop=True)})
    return pd.DataFrame(rows, columns=cols)


def sparkline(series: pd.DataFrame, *, color: str = "#0072B2") -> dict:
    """A tiny axis-less line of value over as_of (0-100 fixed, so sparklines compare).

    A plain figure dict: a page shows one per criterion, and a validated go.Figure costs ~10 ms each.
    """
    return {
        "data": [{"type": "scatter", "mode": "lines", "x": [t.isoformat() for t in series["as_of"]],
                  "y": [None if pd.isna(v) else float(v) for v in series["value"]],
                  "line": {"color": color, "width": 2}, "hoverinfo": "skip"}],
        "layout": {"template": "none", "margin": {"l": 0, "r": 0, "t": 0, "b": 0}, "height": 50,
                   "showlegend": False, "plot_bgcolor": "rgba(0,0,0,0)", "paper_bgcolor": "rgba(0,0,0,0)",
                   "xaxis": {"visible": False}, "yaxis": {"visible": False, "range": [-5, 105]}},
    }


INSET = 4  # px: a sparkline's points stay this far from its edges (a circle of radius 2.5 and its stroke fit)


def sparkline_svg(series: pd.DataFrame, *, color: str = "#0072B2", width: int = 160, height: int = 40,
                  flagged: pd.DataFrame | None = None) -> str:
    """The same tiny line as `sparkline`, as an SVG data URI for an <img>: no Plotly graph per card.

    A city page has a card per criterion; a Plotly graph each cost the browser ~100-300 ms of main-thread
    work on a loaded machine. Built only from numbers and times (no portal text), 0-100 fixed so cards compare.
    `flagged` (as_of, value): scores of partial or empty crawls, hollow circles on the same axes, off the line.
    """
    from urllib.parse import quote

    s = series.dropna(subset=["value"]).sort_values("as_of") if len(series) else series
    marks = flagged_points(flagged)
    body = ""
    if len(s):
        t = [pd.Timestamp(x).value for x in s["as_of"]]
        everything = t + [m[0].value for m in marks]
        t0, span = min(everything), (max(everything) - min(everything)) or 1
        single = len(everything) == 1

        def xy(x: int, v: float) -> tuple[float, float]:
            # INSET px clear of every edge, so a point's circle at the first or last time (or at 0 / 100) is whole
            return ((x - t0) / span * (width - 2 * INSET) + INSET if not single else width / 2,
                    height - INSET - v / 100 * (height - 2 * INSET))

        pts = [xy(x, float(v)) for x, v in zip(t, s["value"], strict=True)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        line = f"<polyline fill='none' stroke='{color}' stroke-width='2' vector-effect='non-scaling-stroke' "
        body = line + f"points='{path}'/>" if len(pts) > 1 else ""
        x, y = pts[-1]
        body += f"<circle cx='{x:.1f}' cy='{y:.1f}' r='2.5' fill='{color}'/>"
        for when, v, _flag in marks:
            x, y = xy(when.value, v)
            body += f"<circle class='flagged' cx='{x:.1f}' cy='{y:.1f}' r='2.5' fill='white' stroke='{color}'/>"
    svg = f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' viewBox='0 0 {width} {height}' " \
          "preserveAspectRatio='none'>" \
          f"{body}</svg>"
    return "data:image/svg+xml;utf8," + quote(svg)


FLAGGED_HOVER = "{flag} crawl: not counted"  # the hover of a flagged score's hollow marker
FLAGGED_LEGEND = "○ partial or empty crawl: not counted"


def criterion_history(history: pd.DataFrame, criterion: str, *, titles: Mapping[str, str] | None = None,
                      suspect_times: Sequence[datetime] = (), flagged: pd.DataFrame | None = None) -> go.Figure:
    """Maturity of one criterion over time (thick line) and its indicators (thin lines).

    `titles` maps indicator keys to readable titles; `suspect_times` are as_of of suspect runs, marked
    with a dotted vertical line (their missing datasets are not deletions). `flagged` = the city's flagged score
    rows (storage.scores with `flag`): each series' scores of partial or empty crawls are hollow markers in its
    colour, a trace of markers only, so they are never joined into its line.
    """
    rows = history[history["criterion"] == criterion] if not history.empty else history
    if rows.empty:
        return empty_figure(f"No scores for {criterion} yet.")
    rows = rows.assign(as_of=_utc(rows["as_of"]), value=pd.to_numeric(rows["value"], errors="coerce"))
    fig = go.Figure()
    titles = titles or {}
    marked = flagged[flagged["criterion"] == criterion] if flagged is not None and len(flagged) else None
    marked = marked.assign(as_of=_utc(marked["as_of"]), value=pd.to_numeric(marked["value"], errors="coerce"),
                           indicator=marked["indicator"].fillna("")).dropna(subset=["value"]) \
        if marked is not None else None
    inds = sorted(k for k in rows["indicator"].fillna("").unique() if k)
    for i, key in enumerate(inds):
        s = rows[rows["indicator"] == key].sort_values("as_of")
        color = SERIES_COLORS[(i + 1) % len(SERIES_COLORS)]
        fig.add_trace(go.Scatter(x=s["as_of"], y=s["value"], mode="lines+markers", name=titles.get(key, key),
                                 line=dict(width=1.5, color=color), marker=dict(size=4), legendgroup=key,
                                 hovertemplate="%{x|%Y-%m-%d}: %{y:.0f}<extra>%{fullData.name}</extra>"))
        _flagged_markers(fig, marked, key, titles.get(key, key), color, size=7)
    c = rows[rows["indicator"].fillna("") == ""].sort_values("as_of")
    if len(c):
        fig.add_trace(go.Scatter(x=c["as_of"], y=c["value"], mode="lines+markers", name=f"{criterion} (criterion)",
                                 line=dict(width=4, color="#000000"), marker=dict(size=6), legendgroup="",
                                 hovertemplate="%{x|%Y-%m-%d}: %{y:.0f}<extra>%{fullData.name}</extra>"))
    _flagged_markers(fig, marked, "", f"{criterion} (criterion)", "#000000", size=10)
    for t in suspect_times:
        fig.add_vline(x=pd.Timestamp(t), line=dict(color=RUN_STATUS_COLORS["suspect"], dash="dot", width=1))
    fig.update_yaxes(range=[-2, 102], title="score (0–100)")
    fig.update_layout(legend=dict(orientation="h", y=-0.2), hovermode="x unified")
    return _base_layout(fig, height=380, title=f"{criterion} over time")


def _flagged_markers(fig: go.Figure, marked: pd.DataFrame | None, indicator: str, name: str, color: str, *,
                     size: int) -> None:
    """One series' flagged scores as hollow markers (mode "markers": no line joins them), hover saying why."""
    s = marked[marked["indicator"] == indicator].sort_values("as_of") if marked is not None else None
    if s is None or s.empty:
        return
    # one legend entry says what every hollow marker is (the first drawn); the hover names the series
    first = not any(t.mode == "markers" for t in fig.data)
    fig.add_trace(go.Scatter(
        x=s["as_of"], y=s["value"], mode="markers", name=FLAGGED_LEGEND, legendgroup="flagged",
        showlegend=first, marker=dict(symbol="circle-open", size=size, color=color, line=dict(width=2)),
        customdata=[FLAGGED_HOVER.format(flag=f or "partial") for f in s["flag"]],
        hovertemplate="%{x|%Y-%m-%d}: %{y:.0f}, %{customdata}<extra>" + plot_text(name) + "</extra>"))


def _views_total(views: pd.Series) -> float:
    """A department's views: NaN (blank) when none of its datasets reports any."""
    return pd.to_numeric(views, errors="coerce").sum(min_count=1)


def department_breakdown(datasets: pd.DataFrame) -> pd.DataFrame:
    """Per department: datasets, share stale (overdue or delinquent), share undocumented (doc score < 50).

    `datasets` = `dataset_table(...)` output of one city. Sorted worst first.
    """
    cols = ["department", "datasets", "stale_pct", "undocumented_pct", "views"]
    if datasets.empty:
        return pd.DataFrame(columns=cols)
    d = datasets.assign(department=datasets["department"].fillna(NO_DEPARTMENT),
                        stale=datasets["freshness"].isin(["overdue", "delinquent"]),
                        undoc=datasets["doc_score"] < UNDOCUMENTED_BELOW)
    # views: blank when none of the department's datasets has a view count (the portal does not report them),
    # as in the grids and the CSV; 0 only when the portal reported 0
    g = d.groupby("department").agg(datasets=("source_id", "size"), stale=("stale", "mean"),
                                    undoc=("undoc", "mean"),
                                    views=("views", _views_total)
                                    ).reset_index()
    g["stale_pct"] = (g.pop("stale") * 100).round(0)
    g["undocumented_pct"] = (g.pop("undoc") * 100).round(0)
    g = g.sort_values(["stale_pct", "undocumented_pct", "datasets"], ascending=[False, False, False])
    return g[cols].reset_index(drop=True)


def department_figure(breakdown: pd.DataFrame, *, top: int = 15) -> go.Figure:
    """Horizontal bars: share of stale and of undocumented datasets for the worst `top` departments."""
    if breakdown.empty:
        return empty_figure("No datasets with a department in the latest harvest.")
    b = breakdown.head(top).iloc[::-1]
    labels = [plot_text(d if len(d) <= 38 else d[:36] + "…") for d in b["department"]]  # full name in the hover
    b = b.assign(label=labels, department=[plot_text(d) for d in b["department"]])
    fig = go.Figure([
        go.Bar(y=b["label"], x=b["stale_pct"], customdata=b["department"], name="stale (overdue or delinquent) %",
               orientation="h",
               marker_color="#D55E00", hovertemplate="%{customdata}: %{x:.0f}% stale<extra></extra>"),
        go.Bar(y=b["label"], x=b["undocumented_pct"], customdata=b["department"], name="undocumented %",
               orientation="h",
               marker_color="#0072B2", hovertemplate="%{customdata}: %{x:.0f}% undocumented<extra></extra>"),
    ])
    # a little past 100, so the "100" tick label at the right end is not cut off
    fig.update_xaxes(range=[0, 104], tickvals=[0, 20, 40, 60, 80, 100], title="% of the department's datasets")
    fig.update_yaxes(type="category", automargin=True)
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=1.0, yanchor="bottom", x=0))
    return _base_layout(fig, height=max(260, 28 * len(b) + 120))


def fix_first(failing: pd.DataFrame, datasets: pd.DataFrame, weights: Mapping[str, float],
              denominators: Mapping[str, float], *, top: int = 25) -> pd.DataFrame:
    """Datasets ranked by points gained × usage: what to fix first.

    `failing` = concatenated `storage.explain` frames with an `indicator` column (without `title` and
    `landing_url`, those of `datasets` are shown); `weights[indicator]` = the
    indicator's share of its criterion (weight / sum of weights in the criterion), `denominators[indicator]`
    = how many datasets the indicator's latest score counted. Fixing one failing dataset lifts that
    indicator by 100 / denominator points, i.e. the criterion by weight × 100 / denominator.
    Usage weight = log10(10 + views + downloads): 1 for an unused dataset, +1 per factor of ten in use,
    so popular datasets come first without a single viral one hiding the rest.
    """
    cols = ["source_id", "title", "department", "indicators", "reasons", "points", "usage", "priority",
            "landing_url"]
    if failing.empty:
        return pd.DataFrame(columns=cols)
    per = {i: (weights.get(i, 0.0) * 100.0 / denominators[i] if denominators.get(i) else 0.0)
           for i in pd.unique(failing["indicator"])}
    # Ranked on sums (pandas' own group sums), described (titles, indicators, reasons) for the datasets only, the
    # texts for the top rows only: a large city fails its indicators millions of times, and a copy or a text per
    # failure would cost seconds and hundreds of megabytes.
    points = failing["indicator"].map(per).astype("float64")
    g = points.groupby(failing["source_id"].to_numpy()).sum().rename_axis("source_id").reset_index(name="points")
    named = failing if "title" in failing else datasets
    g = g.merge(named[["source_id", "title", "landing_url"]].drop_duplicates("source_id"), on="source_id",
                how="left")
    use = pd.DataFrame(columns=["source_id", "department", "usage"])
    if not datasets.empty:
        use = datasets[["source_id", "department"]].copy()
        # blank (not 0) when the portal reports neither views nor downloads: the grids and CSV show it so
        use["usage"] = pd.concat([pd.to_numeric(datasets["views"], errors="coerce"),
                                  pd.to_numeric(datasets["downloads"], errors="coerce")], axis=1) \
            .sum(axis=1, min_count=1).to_numpy()
        use = use.drop_duplicates("source_id")
    # Only datasets in the catalog can be fixed; failing ids that are not datasets (a missing key
    # dataset of the census list, say) are shown on the indicator's drill-down instead.
    g = g.merge(use, on="source_id", how="inner")
    g["usage"] = pd.to_numeric(g["usage"], errors="coerce").astype("Int64")
    # unknown use weighs as no use (factor 1): the ranking is then by points alone
    g["priority"] = (g["points"] * (g["usage"].astype("float64").fillna(0) + 10).map(math.log10)).round(2)
    g["points"] = g["points"].round(2)
    g = g.sort_values(["priority", "points", "title"], ascending=[False, False, True]).head(top)
    mine = failing[failing["source_id"].isin(g["source_id"])]
    text = mine.groupby("source_id").agg(
        indicators=("indicator", lambda s: ", ".join(sorted(set(s)))),
        reasons=("reason", lambda s: "; ".join(dict.fromkeys(str(x) for x in s if x))))
    g = g.join(text, on="source_id")
    return g[cols].reset_index(drop=True)


# --- datasets -------------------------------------------------------------------------------------------

NO_DEPARTMENT = "(no department)"  # the label of datasets with no department, in the department view and its links
UNDOCUMENTED_BELOW = 50  # doc score under which a dataset counts as undocumented in the department view


def freshness_states(catalog: pd.DataFrame, as_of: datetime) -> list[str]:
    """Per dataset: fresh / due / overdue / delinquent / unknown, or "no schedule" without a finite period.

    The indicators' own HDX aging (indicators.derived), so the explorer and the DM4 score cannot disagree.
    """
    from indicators.derived import derive, ensure_columns

    states = derive(ensure_columns(catalog), as_of).freshness
    return ["no schedule" if not s else str(s) for s in states]


def doc_scores(catalog: pd.DataFrame, as_of: datetime) -> np.ndarray:
    """Per dataset: the OD2 documentation index (indicators.open_data), rounded for display, so the explorer
    and the OD2 score on the same page cannot disagree."""
    from indicators.derived import ensure_columns
    from indicators.open_data import documentation_per_asset

    return np.round(documentation_per_asset(ensure_columns(catalog), as_of), 1)


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A column's values as an object array; all None when the frame has no such column."""
    return frame[name].to_numpy(dtype=object) if name in frame else np.full(len(frame), None, dtype=object)


def _present(v: object) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v)) and str(v).strip() != ""


def name_map(cities: pd.DataFrame) -> dict[str, str]:
    """{city key: name} of a `storage.cities` frame (key, name)."""
    return dict(zip(cities["key"], cities["name"], strict=True))


def city_names(keys: pd.Series, names: Mapping[str, str] | None) -> np.ndarray:
    """Each row's city name (`name_map`): a CDO reads "San Francisco, CA" where storage keeps "sf" (a key without a
    name stays)."""
    if not names:
        return keys.to_numpy(dtype=object)
    return keys.map(names).fillna(keys).to_numpy(dtype=object)


DATASET_COLUMNS = ["city_key", "city", "source_id", "title", "asset_type", "department", "freshness",
                   "declared_frequency", "data_modified", "doc_score", "license", "license_id", "formats", "views",
                   "downloads", "landing_url"]
# The licence filter's values besides the normalized ids: a licence text no id was found for, and none at all.
# Raw licence texts are not offered one by one: some portals give every dataset its own licence URL (one city
# had 1,617), which froze the tab while the dropdown drew them.
LICENCE_UNRECOGNISED = "not recognised"
LICENCE_NONE = "none given"


def dataset_table(catalog: pd.DataFrame, as_of: datetime, names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """A catalog (storage.catalog / city_catalog shape) → the explorer's rows with derived columns.

    city = the city's name from `names` (its key when not there), freshness (see `freshness_states`), doc_score
    (see `doc_scores`), license = normalized id else raw text, formats joined with ", ".
    """
    if catalog.empty:
        return pd.DataFrame(columns=DATASET_COLUMNS)
    # columns read as arrays (a dict per row cost two thirds of the explorer's build at 30,000 datasets)
    ids, texts = _column(catalog, "license_id"), _column(catalog, "license")
    keys = catalog["city_key"] if "city_key" in catalog else pd.Series(None, index=catalog.index, dtype=object)
    out = pd.DataFrame({
        "city_key": keys.to_numpy(),
        "city": city_names(keys, names),
        "source_id": catalog["source_id"].to_numpy(),
        "title": catalog["title"].to_numpy(),
        "asset_type": catalog["asset_type"].to_numpy(),
        "department": catalog["department"].to_numpy(),
        "freshness": freshness_states(catalog, as_of),
        "declared_frequency": [cadence(v) for v in catalog["declared_frequency"]],  # "every 3 months", not P3M
        "data_modified": _utc(catalog["data_modified"]).to_numpy(),
        "doc_score": doc_scores(catalog, as_of),
        "license": [i if _present(i) else t for i, t in zip(ids, texts, strict=True)],
        "license_id": [i if _present(i) else LICENCE_UNRECOGNISED if _present(t) else LICENCE_NONE
                       for i, t in zip(ids, texts, strict=True)],
        "formats": [", ".join(f) if isinstance(f, tuple | list) else "" for f in _column(catalog, "formats")],
        "views": pd.to_numeric(catalog["views"], errors="coerce").to_numpy(),
        "downloads": pd.to_numeric(catalog["downloads"], errors="coerce").to_numpy(),
        "landing_url": [safe_url(u) for u in catalog["landing_url"]],
    })
    out["data_modified"] = _utc(out["data_modified"])
    return out


SCHEMA_ERROR_COLUMNS = ["portal_key", "source_id", "title", "errors", "messages", "landing_url"]
DOCUMENT_TITLE = "(the data.json document itself)"


def schema_error_rows(checks: Mapping[str, object], datasets: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset with data.json schema errors, as the GSA Project Open Data dashboard lists them.

    `checks` = storage's {portal_key: connectors.base.SchemaCheck | None}; `datasets` = explorer rows
    (`dataset_table`: source_id, title, landing_url). Columns SCHEMA_ERROR_COLUMNS: `errors` = messages kept
    for the dataset (the connector keeps a few per dataset; the check's error_count has them all), `messages`
    joined with " | ". The document's own errors (source id "") come first; then by most errors, then title.
    """
    rows = []
    for portal_key, check in checks.items():
        for sid, messages in (getattr(check, "errors", None) or {}).items():
            rows.append({"portal_key": portal_key, "source_id": sid, "errors": len(messages),
                         "messages": " | ".join(str(m) for m in messages)})
    out = pd.DataFrame(rows, columns=["portal_key", "source_id", "errors", "messages"])
    known = datasets[["source_id", "title", "landing_url"]].drop_duplicates("source_id") if len(datasets) else \
        pd.DataFrame(columns=["source_id", "title", "landing_url"])
    out = out.merge(known, on="source_id", how="left")
    # a dataset the stored catalog does not hold under that id (or the document): show what the check names
    out["title"] = [DOCUMENT_TITLE if sid == "" else (t if isinstance(t, str) and t else sid)
                    for sid, t in zip(out["source_id"], out["title"], strict=True)]
    out["order"] = (out["source_id"] != "").astype(int)
    out = out.sort_values(["order", "errors", "title"], ascending=[True, False, True], kind="stable")
    return out[SCHEMA_ERROR_COLUMNS].reset_index(drop=True)


def schema_error_kinds(rows: pd.DataFrame, top: int = 5) -> pd.Series:
    """The commonest schema error messages of `schema_error_rows` and how many datasets show each, most first
    (ties by message): the one fix that clears most of the list."""
    if rows.empty:
        return pd.Series(dtype="int64")
    each = pd.Series([m for text in rows["messages"] for m in dict.fromkeys(str(text).split(" | "))])
    counts = each.value_counts().rename_axis("message").reset_index(name="n")
    counts = counts.sort_values(["n", "message"], ascending=[False, True]).head(top)
    return pd.Series(counts["n"].to_numpy(), index=counts["message"].to_numpy())


def safe_url(url: object) -> str | None:
    """Only http(s) URLs become links (a `javascript:` landing page from a portal stays unlinked)."""
    if isinstance(url, str) and re.match(r"^https?://[^\s]+$", url.strip(), re.IGNORECASE):
        return url.strip()
    return None


def filter_datasets(table: pd.DataFrame, *, cities: Sequence[str] = (), departments: Sequence[str] = (),
                    freshness: Sequence[str] = (), min_doc: int | None = None, max_doc: int | None = None,
                    licenses: Sequence[str] = (), formats: Sequence[str] = ()) -> pd.DataFrame:
    """Rows of a `dataset_table` matching every given filter (an empty filter keeps everything)."""
    m = pd.Series(True, index=table.index)
    if cities:
        m &= table["city_key"].isin(cities)
    if departments:
        # the department view's "(no department)" row links here: it stands for the datasets without one
        m &= table["department"].fillna(NO_DEPARTMENT).isin(departments)
    if freshness:
        m &= table["freshness"].isin(freshness)
    if min_doc is not None:
        m &= table["doc_score"] >= min_doc
    if max_doc is not None:
        m &= table["doc_score"] <= max_doc
    if licenses:
        m &= table["license_id"].isin(licenses)
    if formats:
        wanted = {f.lower() for f in formats}
        m &= table["formats"].map(lambda s: bool(wanted & {x.strip().lower() for x in str(s).split(",")}))
    return table[m]


def format_options(table: pd.DataFrame) -> list[str]:
    vals: set[str] = set()
    for s in table["formats"].dropna():
        vals.update(x.strip() for x in str(s).split(",") if x.strip())
    return sorted(vals, key=str.lower)


OPTIONS_SHOWN = 60  # a filter menu lists at most this many values (most datasets first); typing finds the rest


def value_counts(table: pd.DataFrame, column: str) -> pd.Series:
    """How many rows hold each value of `column` (the formats column counts each listed format), most first."""
    if table.empty:
        return pd.Series(dtype="int64")
    s = table[column].dropna()
    if column == "formats":
        s = s.astype(str).str.split(",").explode().str.strip()
        s = s[s != ""]
    counts = s.astype(str).value_counts()
    return counts.iloc[pd.Index(counts.index.str.lower()).argsort(kind="stable")].sort_values(
        ascending=False, kind="stable")


def capped_options(counts: pd.Series, selected: Sequence[str] = (), search: str | None = None,
                   cap: int | None = None) -> list[dict]:
    """Menu options: the chosen values, then the `cap` (OPTIONS_SHOWN) commonest values containing `search`
    (case-blind). Each label carries its number of datasets, so the menu also says what is common.
    """
    cap = OPTIONS_SHOWN if cap is None else cap
    chosen = [v for v in (selected or ()) if v]
    pool = counts
    if search:
        pool = counts[counts.index.str.lower().str.contains(search.strip().lower(), regex=False)]
    out: list[dict[str, object]] = [{"label": f"{v} ({int(counts.get(v, 0)):,})", "value": v}
                                    for v in chosen]
    for v, n in pool.head(cap + len(chosen)).items():
        if v not in chosen and len(out) < cap + len(chosen):
            out.append({"label": f"{v} ({int(n):,})", "value": v})
    return out


# --- compare --------------------------------------------------------------------------------------------

PANEL_HEIGHT = 200  # px: a criterion's small chart on Compare


def compare_panels(history: pd.DataFrame, cities: pd.DataFrame, city_keys: Sequence[str],
                   titles: Mapping[str, str] | None = None) -> list[tuple[str, str, dict]]:
    """Criterion scores over time: (criterion, its label, a small figure with one line per city) for the overall
    score first, then each criterion, all on the same axes (every panel spans the same dates and 0-100).

    Small figures, not one figure of subplots: a graph draws in a main-thread task of its own (graphs.js), and
    Compare's one figure of 13 panels was one draw of 150-320 ms of CPU in headless Chromium (the longest task of
    any page; issue 12 asks for none over 200 ms). Each panel is a plain figure dict: building ~13 figures through
    validated traces cost ~300 ms on the server, the dict is the same JSON in a few milliseconds. The cities'
    legend is the page's (one for all panels, in the cities' stable colours)."""
    crit = criterion_rows(history)
    crit = with_overall(crit[crit["city_key"].isin(city_keys)]) if not crit.empty else crit
    if crit.empty:
        return []
    crit = crit.assign(as_of=_utc(crit["as_of"]), value=pd.to_numeric(crit["value"], errors="coerce"))
    names = name_map(cities)
    colors = palette.city_colors(cities["key"])  # by the city among all cities: stable whatever is chosen
    first, last = crit["as_of"].min(), crit["as_of"].max()
    pad = max((last - first) * 0.03, pd.Timedelta(days=1))  # the first and last markers stay whole
    x_range = [(first - pad).isoformat(), (last + pad).isoformat()]
    groups = {k: g.sort_values("as_of") for k, g in crit.groupby(["city_key", "criterion"])}
    panels = []
    for c in criteria_order(crit["criterion"]):
        data = [{"type": "scatter", "mode": "lines+markers", "name": names.get(key, key),
                 "x": [t.isoformat() for t in s["as_of"]],
                 "y": [None if pd.isna(v) else float(v) for v in s["value"]],
                 "line": {"color": colors.get(key, SERIES_COLORS[i % len(SERIES_COLORS)]), "width": 2},
                 "marker": {"size": 3}, "hovertemplate": "%{x|%Y-%m-%d}: %{y:.0f}<extra>%{fullData.name}</extra>"}
                for i, key in enumerate(city_keys) if (s := groups.get((key, c))) is not None]
        layout = {"template": "none", "font": FONT, "height": PANEL_HEIGHT, "showlegend": False,
                  "plot_bgcolor": "white", "paper_bgcolor": "white", "hovermode": "closest",
                  "margin": {"l": 34, "r": 10, "t": 6, "b": 26},
                  # ticklabeloverflow as in _base_layout: no second measuring; years stay level in a narrow panel
                  "xaxis": {"range": x_range, "type": "date", "gridcolor": GRID, "nticks": 4, "tickangle": 0,
                            "ticklabeloverflow": "allow"},
                  "yaxis": {"range": [-2, 102], "gridcolor": GRID, "ticklabeloverflow": "allow"}}
        panels.append((c, criterion_label(c, titles or {}), {"data": data, "layout": layout}))
    return panels


def compare_profile(latest: pd.DataFrame, cities: pd.DataFrame, city_keys: Sequence[str],
                    titles: Mapping[str, str] | None = None) -> go.Figure:
    """Latest criterion scores as grouped bars, one colour per city."""
    crit = criterion_rows(latest)
    crit = with_overall(crit[crit["city_key"].isin(city_keys)]) if not crit.empty else crit
    if crit.empty:
        return empty_figure("No scores for the chosen cities yet.")
    names = name_map(cities)
    criteria = criteria_order(crit["criterion"])
    colors = palette.city_colors(cities["key"])
    fig = go.Figure()
    for i, key in enumerate(city_keys):
        s = crit[crit["city_key"] == key].set_index("criterion").reindex(criteria)
        fig.add_trace(go.Bar(x=criteria, y=pd.to_numeric(s["value"], errors="coerce"), name=names.get(key, key),
                             marker_color=colors.get(key, SERIES_COLORS[i % len(SERIES_COLORS)]),
                             customdata=[[st, plot_text(criterion_label(c, titles or {}))]
                                         for st, c in zip(s["stage"].fillna("not scored"), criteria, strict=True)],
                             hovertemplate="%{customdata[1]}: %{y:.0f} (%{customdata[0]})"
                                           "<extra>%{fullData.name}</extra>"))
    fig.update_yaxes(range=[0, 100], title="latest score")
    # id, then the start of the criterion's name under it (the whole name is in the hover)
    fig.update_xaxes(type="category", tickvals=criteria, tickangle=0,
                     ticktext=[f"{c}<br>{plot_text(_short((titles or {}).get(c, ''), 16))}" for c in criteria])
    # the legend above the bars (Plotly widens the top margin for it, however many lines it wraps to on a
    # phone), clear of the two-line criterion labels below; the page heads the chart ("Latest profile")
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0))
    _base_layout(fig, height=400)
    # a little more than the margins automargin settles on at desktop widths (Chromium: 54, 12-22, 46, 47 px for
    # the 0-100 ticks and their title, the last criterion label, one line of legend, the two-line labels),
    # reserved so plotly's first draw is its last: the second draw was about half this chart's first-draw CPU
    # time (92-112 -> 56-58 ms a draw, median). A phone's wrapped legend still widens the top.
    return fig.update_layout(margin=dict(l=60, r=24, t=50, b=50))


def overall_gap_row(latest: pd.DataFrame, city_keys: Sequence[str]) -> pd.DataFrame:
    """The `indicator_gaps` row of the overall score (each city's latest, `with_overall`), to head that table."""
    rows = with_overall(latest[latest["city_key"].isin(city_keys)]) if not latest.empty else latest
    rows = rows[rows["criterion"] == OVERALL] if not rows.empty else rows
    values = {k: round(float(v), 1) for k, v in zip(rows.get("city_key", ()), rows.get("value", ()), strict=True)}
    row = {"indicator": "", "title": "Overall score", "criterion": "all criteria (mean, a missing one 0)",
           **{k: values.get(k) for k in city_keys}}
    present = [v for v in values.values() if v is not None]
    row["gap"] = round(max(present) - min(present), 1) if present else None
    return pd.DataFrame([row], columns=["indicator", "title", "criterion", *city_keys, "gap"])


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def indicator_gaps(latest: pd.DataFrame, city_keys: Sequence[str],
                   titles: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per indicator: each chosen city's latest value, and the gap (best − worst), largest gap first."""
    ind = indicator_rows(latest)
    ind = ind[ind["city_key"].isin(city_keys)] if not ind.empty else ind
    if ind.empty:
        return pd.DataFrame(columns=["indicator", "title", "criterion", *city_keys, "gap"])
    wide = ind.pivot_table(index=["indicator", "criterion"], columns="city_key", values="value", aggfunc="last")
    wide = wide.reindex(columns=list(city_keys))
    wide["gap"] = (wide.max(axis=1) - wide.min(axis=1)).round(1)
    wide = wide.reset_index()
    titles = titles or {}
    wide.insert(1, "title", [titles.get(k, k) for k in wide["indicator"]])
    for k in city_keys:
        wide[k] = wide[k].round(1)
    wide.columns.name = None
    return wide.sort_values(["gap", "indicator"], ascending=[False, True], na_position="last").reset_index(drop=True)


# --- harvests -------------------------------------------------------------------------------------------

RUN_COLUMNS = ["run_id", "city_key", "city", "portal_key", "source", "as_of", "finished_at", "duration_s", "status",
               "items", "reported_total", "repeats", "new_versions", "removed", "problem"]


def run_log(runs: pd.DataFrame, names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """storage.runs → the run log's rows: the city's name (`names`), durations rounded, error or suspect reason in
    one column."""
    if runs.empty:
        return pd.DataFrame(columns=RUN_COLUMNS)
    out = runs.copy()
    out["city"] = city_names(out["city_key"], names)
    err = out["error"] if "error" in out else pd.Series(None, index=out.index)
    sus = out["suspect_reason"] if "suspect_reason" in out else pd.Series(None, index=out.index)
    out["problem"] = err.where(err.notna() & (err.astype(str) != ""), sus)
    out["duration_s"] = pd.to_numeric(out["duration_s"], errors="coerce").round(1)
    return out[[c for c in RUN_COLUMNS if c in out.columns]]


def run_status_counts(runs: pd.DataFrame) -> dict[str, int]:
    counts = runs["status"].value_counts().to_dict() if not runs.empty else {}
    return {s: int(counts.get(s, 0)) for s in ("ok", "suspect", "failed", "running")}


RUN_TIMELINE_PX = 320  # the Harvests timeline's height (its box has it before the chart is drawn)


def run_timeline(runs: pd.DataFrame) -> go.Figure:
    """Items per run over time per portal, markers coloured by status (suspect and failed stand out)."""
    if runs.empty:
        return empty_figure("No harvest runs yet: run `maturity harvest` or `maturity demo`.")
    r = runs.assign(as_of=_utc(runs["as_of"]))
    fig = go.Figure()
    for i, (portal, s) in enumerate(sorted(r.groupby("portal_key"), key=lambda kv: str(kv[0]))):
        s = s.sort_values("as_of")
        fig.add_trace(go.Scatter(
            x=s["as_of"], y=s["items"], mode="lines+markers", name=portal,
            line=dict(color=SERIES_COLORS[i % len(SERIES_COLORS)], width=1),
            marker=dict(size=9, color=[RUN_STATUS_COLORS.get(x, "#999") for x in s["status"]],
                        symbol=["x" if x == "failed" else "diamond" if x == "suspect" else "circle"
                                for x in s["status"]],
                        line=dict(width=0)),
            customdata=s["status"],
            hovertemplate="%{x|%Y-%m-%d %H:%M}: %{y} items (%{customdata})<extra>%{fullData.name}</extra>"))
    fig.update_yaxes(title="datasets seen", rangemode="tozero")
    fig.update_layout(legend=dict(orientation="h", y=-0.2))
    return _base_layout(fig, height=RUN_TIMELINE_PX, title="Datasets seen per run (◆ suspect, ✕ failed)")
