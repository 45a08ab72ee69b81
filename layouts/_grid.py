"""The AG Grid pieces of the pages: column definitions, a grid component, and the server-side row model
(`grid_page` serves the block of rows the grid asks for; `grid_view` applies the grid's own filter and sort
models, so a download is the rows the grid shows)."""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dash_ag_grid as dag
import pandas as pd


def rows(frame: pd.DataFrame) -> list[dict]:
    """DataFrame → JSON-safe records: times as ISO text (sorts correctly), NaN/NaT as null."""
    out = as_shown(frame)
    out = out.astype(object).where(out.notna(), None)
    return out.to_dict("records")


def as_shown(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with times as the grids show them ("2022-07-23 00:00")."""
    out = frame.copy()
    for c in out.columns:
        if isinstance(out[c].dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(out[c]):
            out[c] = out[c].dt.strftime("%Y-%m-%d %H:%M").astype(object)
    return out


def grid_page(frame: pd.DataFrame, request: Mapping[str, Any] | None) -> dict:
    """One block for an infinite-model grid (`getRowsRequest` -> `getRowsResponse`): `frame` filtered by the
    grid's column filters, sorted by its sort model, rows [startRow, endRow) as `rows()` records, and the
    number of matching rows. Filters see the values as the grid shows them (times as text)."""
    return grid_block(grid_view(frame, request), request)


def grid_block(view: pd.DataFrame, request: Mapping[str, Any] | None) -> dict:
    """Rows [startRow, endRow) of a view the request's filters and sort are already applied to, and its size."""
    request = request or {}
    start = max(0, int(request.get("startRow") or 0))
    end = max(start, int(request.get("endRow") or start + 100))
    return {"rowData": rows(view.iloc[start:end]), "rowCount": len(view)}


def view_key(request: Mapping[str, Any] | None) -> str:
    """The part of a grid request that decides its view (filters and sort) as text, "" for none: a cache key, so
    the blocks of one sorted or filtered view are cut from one sort, not a sort per block."""
    request = request or {}
    models = {k: request.get(k) for k in ("filterModel", "sortModel") if request.get(k)}
    return json.dumps(models, sort_keys=True, default=str) if models else ""


def grid_view(frame: pd.DataFrame, request: Mapping[str, Any] | None) -> pd.DataFrame:
    """`frame` with an AG Grid request's column filters (`filterModel`) and sort (`sortModel`) applied: the rows
    the grid shows, in its order (the page's count and CSV download use it too, so all three agree)."""
    request = request or {}
    models = {c: m for c, m in (request.get("filterModel") or {}).items()
              if c in frame.columns and isinstance(m, Mapping)}
    view = frame
    if models:
        shown = as_shown(frame[list(models)])  # as rows() sends them, so a text filter matches what the user sees
        keep = pd.Series(True, index=shown.index)
        for column, model in models.items():
            keep &= _filter_mask(shown[column], model)
        view = frame[keep.to_numpy()]
    sort = [s for s in request.get("sortModel") or () if isinstance(s, Mapping) and s.get("colId") in frame.columns]
    if sort:
        view = view.sort_values([s["colId"] for s in sort], ascending=[s.get("sort") != "desc" for s in sort],
                                key=_sort_key, na_position="last", kind="stable")
    return view


def _sort_key(s: pd.Series) -> pd.Series:
    """Text case-insensitively, as the grid's own sort does; numbers and times as they are."""
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s):
        return s
    if isinstance(s.dtype, pd.CategoricalDtype):  # by its text, not by the order of its categories
        s = s.astype(object)
    return s.map(lambda v: v.lower() if isinstance(v, str) else v)


_TEXT_TESTS: dict[str, Callable[[pd.Series, str], pd.Series]] = {
    "contains": lambda v, f: v.str.contains(f, regex=False),
    "notContains": lambda v, f: ~v.str.contains(f, regex=False),
    "equals": lambda v, f: v == f, "notEqual": lambda v, f: v != f,
    "startsWith": lambda v, f: v.str.startswith(f), "endsWith": lambda v, f: v.str.endswith(f),
}
_NUMBER_TESTS: dict[str, Callable[[pd.Series, float, float], pd.Series]] = {
    "equals": lambda v, a, b: v == a, "notEqual": lambda v, a, b: v != a, "lessThan": lambda v, a, b: v < a,
    "lessThanOrEqual": lambda v, a, b: v <= a, "greaterThan": lambda v, a, b: v > a,
    "greaterThanOrEqual": lambda v, a, b: v >= a, "inRange": lambda v, a, b: (v >= a) & (v <= b),
}


def _filter_mask(values: pd.Series, model: Mapping[str, Any]) -> pd.Series:
    """AG Grid's text and number filter models (one condition, or several joined by AND/OR) as a row mask."""
    if "conditions" in model:
        masks = [_filter_mask(values, m) for m in model["conditions"] if isinstance(m, Mapping)]
        if not masks:
            return pd.Series(True, index=values.index)
        joined = masks[0]
        for m in masks[1:]:
            joined = (joined | m) if model.get("operator") == "OR" else (joined & m)
        return joined
    kind, test = model.get("filterType"), model.get("type")
    values = values.astype(object) if isinstance(values.dtype, pd.CategoricalDtype) else values
    blank = values.isna() | (values.astype(str).str.strip() == "")
    if test == "blank":
        return blank
    if test == "notBlank":
        return ~blank
    if kind == "number" and test in _NUMBER_TESTS and model.get("filter") is not None:
        numbers = pd.to_numeric(values, errors="coerce")
        to = model.get("filterTo")
        return _NUMBER_TESTS[test](numbers, float(model["filter"]), float(to) if to is not None else 0.0).fillna(False)
    if kind == "text" and test in _TEXT_TESTS and model.get("filter") is not None:
        text = values.where(~values.isna(), "").astype(str).str.lower()
        return _TEXT_TESTS[test](text, str(model["filter"]).lower()).fillna(False)
    return pd.Series(True, index=values.index)  # a filter this server does not know narrows nothing


def col(field: str, header: str | None = None, **kw: Any) -> dict:
    d = {"field": field, "headerName": header or field.replace("_", " ")}
    d.update(kw)
    return d


def time_col(field: str, header: str | None = None, **kw: Any) -> dict:
    """A time as the grids show it ("2022-07-23 00:00", `as_shown`), never narrower than the text: the grids fit the
    screen by shrinking every column to its minWidth, which cut Harvests' and Datasets' times to "2022-0…"."""
    return col(field, header, minWidth=TIME_MIN_WIDTH_PX, **kw)


def word_col(field: str, header: str | None = None, **kw: Any) -> dict:
    """A vocabulary's word ("delinquent", "no schedule", "as needed"): a column as wide as its longest word."""
    return col(field, header, minWidth=WORD_MIN_WIDTH_PX, **kw)


def city_col(field: str = "city", header: str = "City", **kw: Any) -> dict:
    """A city's name ("San Francisco, CA"), whole at a laptop's width; a longer one shows in full on hover."""
    kw.setdefault("minWidth", CITY_MIN_WIDTH_PX)
    return col(field, header, tooltipField=field, **kw)


def num_col(field: str, header: str | None = None, **kw: Any) -> dict:
    return col(field, header, filter="agNumberColumnFilter", type="rightAligned", **kw)


def portal_link_col(field: str = "landing_url", header: str = "on portal") -> dict:
    return col(field, header, cellRenderer="PortalLink", filter=False, sortable=False, width=110)


def app_path_col(field: str, header: str, path_field: str, **kw: Any) -> dict:
    """A cell linking to the in-app path (with its query) that the row's `path_field` holds, built server-side."""
    return col(field, header, cellRenderer="AppPath", cellRendererParams={"field": path_field}, **kw)


def grid(id: str, frame: pd.DataFrame | None, columns: Sequence[dict], *, height: int = 420,
         page_size: int | None = 50, **kw: Any) -> dag.AgGrid:
    """A sortable, filterable grid; cells are text (no HTML renderer touches portal strings). `frame` None: the
    rows come from the server block by block (pass rowModelType="infinite" and answer with `grid_page`)."""
    options: dict[str, Any] = {"theme": "legacy", "animateRows": False, "enableCellTextSelection": True,
                               "ensureDomOrder": True}
    if page_size:
        options.update(pagination=True, paginationPageSize=page_size,
                       paginationPageSizeSelector=[20, 50, 100, 500])
    options.update(kw.pop("dashGridOptions", {}))
    if frame is not None:
        kw["rowData"] = rows(frame)
    classes = [THEME_CLASS]
    if any(c.get("autoHeight") for c in columns):
        classes.append(AUTO_HEIGHT_CLASS)  # maturity.css: its rows are measured in a body of its own
        options.setdefault("rowBuffer", AUTO_HEIGHT_ROW_BUFFER)
    kw.setdefault("className", " ".join(classes))
    return dag.AgGrid(
        id=id, columnDefs=[readable(c) for c in columns],
        defaultColDef={"sortable": True, "filter": True, "resizable": True, "floatingFilter": True,
                       "minWidth": 90},
        dashGridOptions=options, columnSize="responsiveSizeToFit", style={"height": f"{height}px"}, **kw)


# The grids' look is a stylesheet served with the page (assets/ag-grid-<version>.min.css and
# ag-theme-quartz-<version>.min.css: AG Grid's "legacy" CSS themes), not AG Grid's Theming API. That API builds its
# theme in the page as the first grid mounts: 25 <style> elements, ~180 KB of CSS generated and parsed inside that
# grid's mount task, the longest main-thread task of every page with a grid (Chrome trace of the demo: building the
# theme and measuring its sizes were ~50-60 ms of a ~250 ms task). The stylesheet is parsed with the page instead,
# before the scripts run. Its version must be the grid's (tests/layouts/test_pages.py checks the names).
THEME_CLASS = "ag-theme-quartz"
THEME_FILES = ("ag-grid-{version}.min.css", "ag-theme-quartz-{version}.min.css")
AUTO_HEIGHT_CLASS = "grid-auto-height"  # a grid with a column whose cells set the row's height (autoHeight)
# Rows drawn beyond the grid's box in a grid whose rows take their height from wrapped cells (AG Grid's default: 10
# above and 10 below). AG Grid measures each wrapped cell as it draws it, a forced style and layout per cell: the city
# page's WWC grid drew 20 rows (the box's 10 at the default height, and 10 more) and measured 40 cells, 2/3 of the task
# that drew them (~210 ms of CPU, Chrome trace of the demo). Those outside the box are drawn as they scroll in.
AUTO_HEIGHT_ROW_BUFFER = 0
TEXT_MIN_WIDTH_PX = 110  # per unit of flex: a text column never fits the screen by shrinking to a few letters
TIME_MIN_WIDTH_PX = 150  # "2022-07-23 00:00" in the theme's 14 px font (~120 px) and the cell's padding
WORD_MIN_WIDTH_PX = 120  # "no schedule", "delinquent" likewise
CITY_MIN_WIDTH_PX = 170  # "San Francisco, CA", "New York City, NY" likewise


def readable(column: dict) -> dict:
    """A text column (one with `flex`) gets a minimum width, so on a phone the grid scrolls sideways instead of
    cutting every title to "Buildin…" (responsiveSizeToFit shrinks columns down to their minWidth)."""
    if "flex" in column and "minWidth" not in column:
        return {**column, "minWidth": min(300, TEXT_MIN_WIDTH_PX * int(column["flex"]))}
    return column
