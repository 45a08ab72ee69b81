"""Manual evidence a CDO enters, and the audit log that records who changed it."""
from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

import storage

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
# Storage keeps whatever the CDO typed; an example address stands in for a policy document's URL.
POLICY_URL = "https://example.org/chicago/open-data-executive-order.pdf"


def test_add_list_delete_evidence_with_audit_trail(engine):
    eid = storage.add_evidence(engine, "chicago", "OD1", url=POLICY_URL, date="2012-12-10",
                               note="Executive Order 2012-2", actor="cdo@chicago", at=AT)
    later = AT.replace(hour=10)
    other = storage.add_evidence(engine, "cincinnati", "OD1", url=None, date=None, note="council minutes pending",
                                 actor="analyst", at=later)

    ev = storage.evidence(engine, "chicago")
    assert list(ev.columns) == ["id", "city_key", "criterion", "url", "date", "note", "actor", "created_at"]
    assert ev.to_dict("records") == [{"id": eid, "city_key": "chicago", "criterion": "OD1", "url": POLICY_URL,
                                      "date": "2012-12-10", "note": "Executive Order 2012-2",
                                      "actor": "cdo@chicago", "created_at": AT}]
    assert len(storage.evidence(engine)) == 2

    storage.delete_evidence(engine, eid, actor="admin", at=AT.replace(hour=11))
    assert storage.evidence(engine, "chicago").empty
    assert list(storage.evidence(engine)["id"]) == [other]
    with pytest.raises(LookupError):
        storage.delete_evidence(engine, eid, actor="admin", at=AT.replace(hour=12))

    log = storage.audit_log(engine)
    assert list(log.columns) == ["at", "actor", "action", "detail"]
    # Newest first: the delete, then the two adds; the delete keeps what the record said.
    assert list(log["action"]) == ["evidence.delete", "evidence.add", "evidence.add"]
    assert list(log["actor"]) == ["admin", "analyst", "cdo@chicago"]
    assert json.loads(log.iloc[0]["detail"])["url"] == POLICY_URL
    assert log.iloc[2]["at"] == AT
    assert len(storage.audit_log(engine, limit=1)) == 1
