"""The page comes in the first layout answer: `/_dash-layout` asked by the page at /harvests (its Referer) holds
the Harvests run log, so no router round trip stands between Dash's start and the page's content
(maturity/app.py, page_container). The browser side (no router request, the chunk asked early) is in
tests/e2e/test_first_visit.py.
"""
from __future__ import annotations

from typing import Any

import pytest

import storage
from maturity import app as app_mod


@pytest.fixture
def client(dash_app):
    return dash_app.server.test_client()


def find(node: Any, id_: str) -> dict | None:
    """The serialized component with this id in a layout answer (None when there is none)."""
    if isinstance(node, dict):
        if node.get("props", {}).get("id") == id_:
            return node
        for v in (node.get("props", {}).get("children"), *node.get("props", {}).values()):
            found = find(v, id_)
            if found is not None:
                return found
    elif isinstance(node, list):
        for v in node:
            found = find(v, id_)
            if found is not None:
                return found
    return None


def first_layout(client, page: str | None) -> dict:
    headers = {"Referer": f"http://localhost{page}"} if page is not None else {}
    r = client.get("/_dash-layout", headers=headers)
    assert r.status_code == 200
    return r.json


def test_harvests_run_log_comes_in_the_first_layout_answer(client, layout_db):
    layout = first_layout(client, "/harvests")
    location = find(layout, app_mod.PAGES_LOCATION)["props"]
    # the location already holds the address: on mount it reports nothing, so Dash's router does not run
    assert (location["pathname"], location["search"]) == ("/harvests", "")
    assert find(layout, app_mod.PREFILLED)["props"]["data"] == "/harvests"
    assert find(layout, app_mod.PAGES_STORE)["props"]["data"] == {"title": "Harvests · City data maturity"}
    grid = find(find(layout, app_mod.PAGES_CONTENT), "hv-grid")
    # every run of the test database (filler.fill): Chicago 2 snapshots + the partial crawl + 3 weekly runs = 6,
    # Indianapolis 2 + 3 = 5, Minneapolis and Philadelphia 1 + 3 = 4 each: 19
    assert len(grid["props"]["rowData"]) == 19 == len(storage.runs(storage.open_db(layout_db[0])))


def test_city_page_with_its_query_comes_in_the_first_layout_answer(client):
    layout = first_layout(client, "/city/chicago?criterion=DM4")
    location = find(layout, app_mod.PAGES_LOCATION)["props"]
    assert (location["pathname"], location["search"]) == ("/city/chicago", "?criterion=DM4")
    content = find(layout, app_mod.PAGES_CONTENT)
    assert find(content, "city-cards") is not None  # the criteria cards, as the router would have drawn them
    assert find(content, "city-criterion")["props"]["value"] == "DM4"


@pytest.mark.parametrize("page", [None, "/no-such-page", "/assets/maturity.css"])
def test_without_a_page_to_fill_dash_routes_as_before(client, page):
    """No Referer, or none naming a page: Dash's empty container, filled by its router once the location reports
    the address (no pathname set)."""
    layout = first_layout(client, page)
    assert "pathname" not in find(layout, app_mod.PAGES_LOCATION)["props"]
    assert find(layout, app_mod.PAGES_CONTENT)["props"].get("children") is None
    assert find(layout, app_mod.PREFILLED)["props"]["data"] == ""


def test_a_referer_of_another_host_fills_nothing(client):
    r = client.get("/_dash-layout", headers={"Referer": "http://elsewhere.example/harvests"})
    assert find(r.json, app_mod.PAGES_CONTENT)["props"].get("children") is None


def test_no_callback_redraws_a_filled_page_at_load(client):
    """What comes with the page is not asked for again when the page starts: Harvests' run log, the header's poll
    (its marker is read by the layout) and Dash's router answer only to a change (prevent_initial_call)."""
    deps = {d["output"]: d for d in client.get("/_dash-dependencies").json}
    assert deps["hv-body.children"]["prevent_initial_call"] is True
    assert deps["..live-marker.data...live-status.children.."]["prevent_initial_call"] is True
    router = deps[f"..{app_mod.PAGES_CONTENT}.children...{app_mod.PAGES_STORE}.data.."]
    assert router["prevent_initial_call"] is True


def test_datasets_grid_and_count_come_in_the_first_layout_answer(client, layout_db):
    """The explorer grid (its rows come block by block from the server) and the count above it are drawn with the
    page: no callback answer stands between the layout and the grid's first request for rows."""
    layout = first_layout(client, "/datasets?cities=chicago")
    content = find(layout, app_mod.PAGES_CONTENT)
    n = len(storage.city_catalog(storage.open_db(layout_db[0]), "chicago"))  # Chicago's latest catalog
    grid = find(find(content, "ds-body"), "ds-grid")["props"]
    assert grid["rowModelType"] == "infinite" and "rowData" not in grid
    assert grid["dashGridOptions"]["infiniteInitialRowCount"] == min(n, 100)  # one block, until the first answer
    assert find(content, "ds-count")["props"]["children"] == f"{n:,} of {n:,} datasets match in the chosen cities"


def test_compare_comparison_comes_in_the_first_layout_answer(client):
    layout = first_layout(client, "/compare?cities=chicago,philadelphia")
    body = find(find(layout, app_mod.PAGES_CONTENT), "cmp-body")
    # the profile and a panel per criterion, the overall score's first, as the body callback would have drawn them
    assert find(body, "cmp-profile") is not None
    panels = find(body, "cmp-history")["props"]["children"]
    assert find(panels[0], "cmp-history-Overall") is not None
    assert [b["props"]["id"] for b in find(body, "cmp-chosen")["props"]["children"][1:]] == [
        "cmp-chosen-chicago", "cmp-chosen-philadelphia"]


def dropdowns_and_their_boxes(node: Any, parent: dict | None = None) -> list[tuple[str, str]]:
    """(dropdown id, its parent's className) for every dcc.Dropdown in a serialized layout."""
    out: list[tuple[str, str]] = []
    if isinstance(node, dict):
        if node.get("type") == "Dropdown":
            out.append((str(node["props"].get("id")), (parent or {}).get("props", {}).get("className") or ""))
        for v in node.get("props", {}).values():
            out += dropdowns_and_their_boxes(v, node)
    elif isinstance(node, list):
        for v in node:
            out += dropdowns_and_their_boxes(v, parent)
    return out


@pytest.mark.parametrize("page", ["/city/chicago", "/compare", "/datasets", "/harvests", "/evidence"])
def test_every_dropdown_sits_in_a_box_that_keeps_its_height(client, page):
    """Dash draws nothing in a dropdown's place until its code has loaded: the page below moved down 34 px when it
    came after the content (Harvests, tests/e2e/test_first_visit.py). Every page's dropdowns are in ui.dropdown's
    box, which has the closed dropdown's height (maturity.css)."""
    from layouts import _components as ui

    found = dropdowns_and_their_boxes(find(first_layout(client, page), app_mod.PAGES_CONTENT))
    assert found, page
    assert all(ui.DROPDOWN_BOX_CLASS in box.split() for _, box in found), found
