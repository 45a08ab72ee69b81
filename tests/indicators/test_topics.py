"""Topic evidence on real records: what counts as goals and progress, budget, spending and procurement, and the
precision goal on the hand-labelled titles (tests/fixtures/topic_labels.csv, see PROVENANCE.md).

Records are normalized by the real Socrata connector from recorded Discovery items:
tests/fixtures/socrata/latest/<domain>.jsonl.gz and tests/fixtures/topics/socrata_dashboard_titles_2022.jsonl.gz
(verbatim lines of the 2022 scrape of eight more domains, chosen for titles and tags that say "dashboard").
"""
from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from connectors import make_connector
from connectors.archive import read_items
from connectors.base import DatasetRecord, records_frame
from indicators import topics
from indicators.registry import BY_KEY
from tests.conftest import FIXTURES
from tests.emulator import portal_config

AS_OF = datetime(2022, 7, 23, 12, tzinfo=UTC)  # the day of the last scrape
DASHBOARDS = FIXTURES / "topics" / "socrata_dashboard_titles_2022.jsonl.gz"
LABELS = FIXTURES / "topic_labels.csv"
LABEL_META = ("domain", "source_id", "title", "tags", "category", "note", "stratum", "half")


def catalog(path: Path, ids: list[str]) -> pd.DataFrame:
    """The named items of a recorded Socrata file, normalized by the real connector, in the order given."""
    items, _ = read_items(path, "socrata")
    conn = make_connector(portal_config("socrata", "https://portal.example", domain="portal.example"))
    by_id = {raw["resource"]["id"]: conn.normalize(raw) for raw in items}
    return records_frame([by_id[i] for i in ids])


def latest(domain: str, ids: list[str]) -> pd.DataFrame:
    return catalog(FIXTURES / "socrata" / "latest" / f"{domain}.jsonl.gz", ids)


@pytest.fixture
def all_scored(monkeypatch):
    """Matching alone, whichever topics the labels currently put under possible evidence."""
    monkeypatch.setattr(topics, "possible_evidence", lambda: frozenset())


# Titles and tags that say "dashboard" (or sit on a city's performance site) without publishing a goal or a
# measure of progress toward one - the false PA3 matches of issue 9:
#   data.cityofevanston.org yw7p-chs5 "Guns Recovered" and rfe6-b4mt "Evanston Police Activity" (tag "police
#   dashboard"), win7-xbeb "2013-15 Crime Rates" (tag "livability dashboard"); data.calgary.ca vnha-3kkk
#   "Quality of life indicators" (tag "citizen-dashboard"); dashboard.plano.gov ptbe-8q2a "Dashboard Turnover-2";
#   data.weho.org phsm-35qu "Planning Dashboard"; the bond ratings performance.cityofhenderson.com xzhx-gsdc
#   "Bond Rating" and performance.cityofcamas.us rir3-jnyj "Fin- Bond Rating Table";
#   data.cityofnewyork.us s52s-navf "Automations Dashboard"; data.sfgov.org pnpu-7zb5 "Campaign Finance - Public
#   Funds Disbursed - November 3, 2015 Election" (tag "campaign finance dashboard 2015").
NOT_GOALS = ["yw7p-chs5", "rfe6-b4mt", "win7-xbeb", "vnha-3kkk", "ptbe-8q2a", "phsm-35qu", "xzhx-gsdc", "rir3-jnyj"]
# ... and three that do publish goals or measures: performance.austintexas.gov kfvg-u7kg "Dashboard Key
# Indicators" ("key indicators"), dashboard.plano.gov wx9a-nx75 "Finance Department Goals" ("goals"),
# stat.montgomerycountymd.gov uk9g-arib "Gov Stat FIN HPM Spreadsheet" (CountyStat: "stat"; its tag "headline
# performance measures" is not read, as the title already names the topic).
GOALS = {"kfvg-u7kg": "words: key indicators", "wx9a-nx75": "words: goals", "uk9g-arib": "words: stat"}


def test_dashboard_titles_and_tags_are_not_goals_and_progress(all_scored):
    not_goals = pd.concat([catalog(DASHBOARDS, NOT_GOALS), latest("data.cityofnewyork.us", ["s52s-navf"]),
                           latest("data.sfgov.org", ["pnpu-7zb5"])], ignore_index=True)
    p = topics.goals_published(not_goals, AS_OF)
    # no candidate at all: value 0 and the reason, not 50 for "a performance asset exists"
    assert p.value == 0 and p.matches == {}
    assert p.failing == {"performance asset": "no performance asset found"}
    # the crime rates table still counts as the census "crime reports" key dataset (title word "crime")
    k = topics.census_key_datasets(not_goals, AS_OF)
    assert k.matches == {"win7-xbeb": "crime_reports - words: crime"}


def test_goals_and_measures_are_kept(all_scored):
    both = pd.concat([catalog(DASHBOARDS, NOT_GOALS + list(GOALS)),
                      latest("data.cityofchicago.org", ["sbt5-2ec8"])], ignore_index=True)
    p = topics.goals_published(both, AS_OF)
    # Chicago sbt5-2ec8 "Performance Metrics - Transportation - Pothole Repair" (also tagged so) is the fourth
    assert p.matches == {**GOALS, "sbt5-2ec8": "words: performance metrics"}
    assert p.detail["found"] == 4 and p.value >= 50


def test_budget_spending_procurement_on_real_titles(all_scored):
    # Chicago: qnek-cfpp "Budget - 2015 Budget Ordinance - Appropriations" is the budget; s4vu-giwb "Payments"
    # is spending; rsxa-ify5 "Contracts" is procurement; 92xk-4rg9 "Employee Overtime and Supplemental Earnings
    # 2012" (tag "budget"), s9wg-6is6 "Performance Metrics - Procurement Services - City Auctions" (a measure
    # about procurement, tags "procurement", "revenue") and xika-473c "Lobbyist Data - Expenditures - Large"
    # (lobbying, not city spending) are none of them.
    chicago = latest("data.cityofchicago.org", ["qnek-cfpp", "s4vu-giwb", "rsxa-ify5", "92xk-4rg9", "s9wg-6is6",
                                                "xika-473c"])
    b = topics.budget_finance(chicago, AS_OF)
    assert b.matches == {"qnek-cfpp": "words: appropriations, budget", "s4vu-giwb": "words: payments"}
    assert (b.detail["budget_found"], b.detail["spending_found"]) == (1, 1)
    r = topics.procurement(chicago, AS_OF)
    assert r.matches == {"rsxa-ify5": "words: contracts"}  # its one-word tag "procurement" is not read
    assert topics.goals_published(chicago, AS_OF).matches == {"s9wg-6is6": "words: performance metrics"}
    # Austin nv4a-hc9c "Austin Resource Recovery Fiscal Year 2021 Expenses" sits in the category "Budget and
    # Finance": it is spending, not a budget; Nashville 7saa-4q7b "Metro Government Employee Earnings" is tagged
    # "budget": it is the payroll (census "employee salaries"), not a budget.
    other = pd.concat([latest("data.austintexas.gov", ["nv4a-hc9c"]), catalog(DASHBOARDS, ["7saa-4q7b"])],
                      ignore_index=True)
    b = topics.budget_finance(other, AS_OF)
    assert b.matches == {"nv4a-hc9c": "words: expenses"} and b.detail["budget_found"] == 0
    k = topics.census_key_datasets(other, AS_OF)
    assert k.matches == {"nv4a-hc9c": "spending - words: expenses",
                         "7saa-4q7b": "employee_salaries - words: employee earnings"}


def test_a_tag_counts_only_as_a_phrase(all_scored):
    # Austin sc8s-w4ka "R2 R 2009" (tags police, r2r, response to resistance): the title names no topic, so the
    # tag phrase "response to resistance" (Austin's name for its use-of-force tables) does; Austin rus9-w6q5
    # "2018 Response to Resistance Data" is found by its title. Built records with the same title show the rest
    # of the rule: a one-word tag or a category only says what a dataset relates to.
    real = latest("data.austintexas.gov", ["sc8s-w4ka", "rus9-w6q5"])
    built = records_frame([
        DatasetRecord(portal_key="t", source_id="b", asset_type="dataset", title="R2 R 2009", keywords=("force",)),
        DatasetRecord(portal_key="t", source_id="c", asset_type="dataset", title="R2 R 2009", theme="Use of Force")])
    k = topics.census_key_datasets(pd.concat([real, built], ignore_index=True), AS_OF)
    assert k.matches == {"sc8s-w4ka": "police_use_of_force - tags: response to resistance",
                         "rus9-w6q5": "police_use_of_force - words: response to resistance"}


def _labelled() -> tuple[list[dict[str, str]], list[str], dict[str, np.ndarray]]:
    with LABELS.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        keys = [c for c in reader.fieldnames or [] if c not in LABEL_META]
    recs = [DatasetRecord(portal_key=r["domain"], source_id=str(i), asset_type="dataset", title=r["title"] or None,
                          keywords=tuple(t for t in r["tags"].split("; ") if t), theme=r["category"] or None)
            for i, r in enumerate(rows)]
    return rows, keys, topics.topic_matches(records_frame(recs), AS_OF)


def test_labels_cover_every_topic_of_the_matcher():
    rows, keys, words = _labelled()
    assert len(rows) >= 400
    assert set(keys) == set(words)  # one label column per topic the indicators use, no more
    assert {r["half"] for r in rows} == {"tune", "holdout", "unseen_portals", "fresh_check"}


def test_every_scored_topic_has_precision_at_least_the_goal_on_the_labels():
    # A property of the rules, checked on the hand labels: every topic that counts in a criterion matches
    # titles a person also put in that topic at least MIN_PRECISION of the time; the topics that do not are
    # exactly those vocab.json lists as possible evidence (shown, not scored).
    rows, keys, words = _labelled()
    below = set()
    for key in keys:
        hit = words[key] != ""
        truth = np.array([r[key] == "1" for r in rows])
        assert hit.sum() > 0, f"{key}: the labels hold no match to measure"
        if (hit & truth).sum() / hit.sum() < topics.MIN_PRECISION:
            below.add(key)
    assert below == topics.possible_evidence()


def test_possible_evidence_is_shown_not_scored(monkeypatch):
    # Chicago ydr8-5enu "Building Permits" and ijzp-q8t2 "Crimes - 2001 to Present", with construction permits
    # as possible evidence and crime reports scored -> 1 of 20 key datasets = 5
    chicago = latest("data.cityofchicago.org", ["ydr8-5enu", "ijzp-q8t2"])
    monkeypatch.setattr(topics, "possible_evidence", lambda: frozenset({"construction_permits"}))
    k = topics.census_key_datasets(chicago, AS_OF)
    assert k.value == pytest.approx(5.0)
    assert k.detail["construction_permits"] == 1 and k.detail["crime_reports"] == 1
    assert k.matches["ydr8-5enu"].startswith("construction_permits - possible evidence, not counted - ")
    assert "possible evidence only" in k.failing["census:construction_permits"]
    # an indicator built on a possible-evidence topic keeps its value but weighs 0 in its criterion and says so
    monkeypatch.setattr(topics, "possible_evidence", lambda: frozenset({"performance"}))
    assert topics.scored_weight(1.0, "performance") == 0.0
    assert topics.scored_title("Goals and progress published", "performance") == (
        "Goals and progress published (possible evidence)")
    assert topics.scored_weight(1.0, "budget", "spending") == 1.0
    assert topics.scored_title("Budget", "budget") == "Budget"


def test_goal_words_as_possible_evidence_leave_the_asset_types(monkeypatch):
    # tests/fixtures/socrata_catalog/us_catalog_only_dataset_story_2025.json: q5as-kyim "COVID-19 Report" is a
    # Socrata Perspectives story (data 2024-07-31: within 365 days of 2025-01-01); Chicago sbt5-2ec8
    # "Performance Metrics - Transportation - Pothole Repair" is matched by words. With "performance" as
    # possible evidence only the story counts (50 + 50 * 1/1) and the word match is shown, marked
    stories = catalog(FIXTURES / "socrata_catalog" / "us_catalog_only_dataset_story_2025.json", ["q5as-kyim"])
    both = pd.concat([stories, latest("data.cityofchicago.org", ["sbt5-2ec8"])], ignore_index=True)
    at = datetime(2025, 1, 1, tzinfo=UTC)
    monkeypatch.setattr(topics, "possible_evidence", lambda: frozenset({"performance"}))
    p = topics.goals_published(both, at)
    assert p.value == pytest.approx(100.0) and p.detail["found"] == 1 and p.detail["possible"] == 1
    assert p.matches == {"q5as-kyim": "asset type story",
                         "sbt5-2ec8": "possible evidence, not counted - words: performance metrics"}
    # words alone, as possible evidence: nothing counts
    only_words = topics.goals_published(latest("data.cityofchicago.org", ["sbt5-2ec8"]), at)
    assert only_words.value == 0 and only_words.detail["found"] == 0
    monkeypatch.setattr(topics, "possible_evidence", lambda: frozenset())
    assert topics.goals_published(both, at).detail["found"] == 2


def test_registry_follows_the_measured_precision():
    # BF1 and RDC7 rest on word matching alone: possible evidence makes them weigh 0 and says so in the title.
    # PA3 keeps its weight: it counts its word matches only while they meet the goal (test above).
    for key, parts in (("bf1_budget_finance", {"budget", "spending"}), ("rdc7_procurement", {"procurement_contracts"})):
        ind = BY_KEY[key]
        possible = bool(parts & topics.possible_evidence())
        assert (ind.weight == 0) == possible
        assert ind.title.endswith("(possible evidence)") == possible
    assert BY_KEY["pa3_goals_published"].weight == 1.0
