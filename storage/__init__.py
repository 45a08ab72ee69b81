"""Storage: the only package that imports SQLAlchemy. Named functions in, dataclasses and DataFrames out."""
from __future__ import annotations

# Engine is re-exported so that the runtime and the pages can annotate an engine without importing SQLAlchemy.
from sqlalchemy.engine import Engine

from storage.crawls import COMPLETE_SHARE, score_flag
from storage.db import dispose, gc_paused, log_cleanup_failure, open_db, unreachable_reason
from storage.item_errors import item_errors, save_item_errors
from storage.locks import (
                            LEASE_TTL_S,
                            drop_lease,
                            held_leases,
                            process_owner,
                            release_lock,
                            take_lease,
                            try_lock,
                            waited_lease,
)
from storage.migrate import upgrade
from storage.orphans import close_orphaned_runs, close_runs_of, portal_lease, take_portal
from storage.queries import (
                             CatalogRun,
                             CityHarvest,
                             DecodedVersions,
                             audit_log,
                             catalog,
                             catalog_rows,
                             catalog_run,
                             cities,
                             city_catalog,
                             city_catalog_chunks,
                             city_harvest,
                             criterion_scores,
                             evidence,
                             explain,
                             last_status,
                             latest_crawls,
                             latest_run_marker,
                             latest_scores,
                             portals,
                             removed_ids,
                             row_counts,
                             run_dates,
                             runs,
                             score_evidence,
                             scores,
)
from storage.writes import (
                             RunClosed,
                             RunConflict,
                             RunSummary,
                             RunWriter,
                             add_evidence,
                             begin_run,
                             delete_evidence,
                             fail_run,
                             fail_running,
                             rejudge_runs,
                             save_harvest,
                             save_scores,
                             start_run,
                             sync_config,
)

__all__ = [
    "COMPLETE_SHARE", "LEASE_TTL_S", "CatalogRun", "CityHarvest", "DecodedVersions", "Engine", "RunClosed",
    "RunConflict", "RunSummary", "RunWriter", "add_evidence", "begin_run", "audit_log", "catalog", "catalog_rows",
    "catalog_run", "cities",
    "city_catalog", "city_catalog_chunks", "city_harvest", "close_orphaned_runs",
    "close_runs_of", "criterion_scores", "delete_evidence", "dispose", "drop_lease", "gc_paused",
    "log_cleanup_failure",
    "evidence", "explain", "fail_run", "fail_running", "held_leases", "item_errors", "last_status", "latest_crawls",
    "latest_run_marker", "latest_scores", "open_db", "portal_lease", "portals", "process_owner", "rejudge_runs",
    "release_lock", "removed_ids", "row_counts", "run_dates", "runs", "save_harvest", "save_item_errors",
    "save_scores", "score_evidence", "score_flag", "scores", "start_run", "sync_config", "take_lease", "waited_lease",
    "take_portal", "try_lock", "unreachable_reason", "upgrade",
]
