"""Storage: the only package that imports SQLAlchemy. Named functions in, dataclasses and DataFrames out."""
from __future__ import annotations

from storage.db import dispose, gc_paused, open_db
from storage.item_errors import item_errors, save_item_errors
from storage.locks import (
                            LEASE_TTL_S,
                            drop_lease,
                            held_leases,
                            process_owner,
                            release_lock,
                            take_lease,
                            try_lock,
)
from storage.migrate import upgrade
from storage.orphans import close_orphaned_runs, close_runs_of, portal_lease, take_portal
from storage.queries import (
                             audit_log,
                             catalog,
                             cities,
                             city_catalog,
                             criterion_scores,
                             evidence,
                             explain,
                             last_status,
                             latest_run_marker,
                             latest_scores,
                             portals,
                             row_counts,
                             run_dates,
                             runs,
                             score_evidence,
                             scores,
)
from storage.writes import (
                             SUSPECT_SHRINK,
                             RunClosed,
                             RunSummary,
                             add_evidence,
                             begin_run,
                             close_stale_runs,
                             delete_evidence,
                             fail_run,
                             fail_running,
                             save_harvest,
                             save_scores,
                             start_run,
                             sync_config,
)

__all__ = [
    "LEASE_TTL_S", "close_orphaned_runs", "close_runs_of", "drop_lease", "held_leases", "portal_lease",
    "process_owner", "take_lease", "take_portal", "item_errors", "save_item_errors",
    "SUSPECT_SHRINK", "RunClosed", "RunSummary", "add_evidence", "begin_run", "audit_log", "catalog", "cities",
    "city_catalog", "close_stale_runs", "criterion_scores", "delete_evidence", "dispose", "gc_paused",
    "evidence", "explain", "fail_run", "fail_running", "last_status", "latest_run_marker", "latest_scores", "open_db",
    "portals", "release_lock", "row_counts", "run_dates", "runs", "save_harvest", "save_scores",
    "score_evidence", "scores", "start_run", "sync_config", "try_lock", "upgrade",
]
