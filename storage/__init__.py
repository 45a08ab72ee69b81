"""Storage: the only package that imports SQLAlchemy. Named functions in, dataclasses and DataFrames out."""
from __future__ import annotations

from storage.crawls import COMPLETE_SHARE, score_flag
from storage.db import dispose, gc_paused, open_db
from storage.locks import release_lock, try_lock
from storage.migrate import upgrade
from storage.queries import (
                             CatalogRun,
                             CityHarvest,
                             audit_log,
                             catalog,
                             catalog_run,
                             cities,
                             city_catalog,
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
                             RunSummary,
                             add_evidence,
                             begin_run,
                             close_stale_runs,
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
    "COMPLETE_SHARE", "CatalogRun", "CityHarvest", "RunClosed", "RunSummary", "add_evidence", "begin_run",
    "audit_log", "catalog", "catalog_run", "cities", "city_catalog", "city_harvest", "close_stale_runs",
    "criterion_scores", "delete_evidence", "dispose", "gc_paused",
    "evidence", "explain", "fail_run", "fail_running", "last_status", "latest_crawls", "latest_run_marker",
    "latest_scores", "open_db", "portals", "rejudge_runs", "release_lock", "removed_ids", "row_counts", "run_dates",
    "runs", "save_harvest", "save_scores",
    "score_evidence", "score_flag", "scores", "start_run", "sync_config", "try_lock", "upgrade",
]
