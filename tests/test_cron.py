"""Standard cron semantics (Sunday = 0 or 7) in config validation and at run time: one reading of a line."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from maturity import scheduler, settings
from maturity.settings import ConfigError

CONFIG = """
[[cities]]
key = "chicago"
name = "Chicago, IL"
[[cities.portals]]
kind = "socrata"
url = "https://data.cityofchicago.org"
schedule = "{schedule}"
"""


def load(tmp_path: Path, schedule: str) -> settings.Settings:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(schedule=schedule), encoding="utf-8")
    return settings.load(path, environ={})


def test_sunday_as_7_is_accepted_and_fires_on_sunday(tmp_path):
    # APScheduler's from_crontab rejected "0 4 * * 7" (its weekdays are 0-6 = Monday-Sunday); in cron 7 is Sunday.
    cfg = load(tmp_path, "0 4 * * 7")
    assert cfg.portal("chicago-socrata").schedule == "0 4 * * 7"
    # 2026-11-25 is a Wednesday (datetime(...).weekday() == 2): the next fire is Sunday 2026-11-29 04:00 UTC.
    wednesday = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    fire = scheduler.cron_trigger("0 4 * * 7").get_next_fire_time(None, wednesday)
    assert fire == datetime(2026, 11, 29, 4, 0, tzinfo=UTC) and fire.strftime("%A") == "Sunday"
    # 0 is the same day, and so are the names
    for same in ("0 4 * * 0", "0 4 * * sun", "0 4 * * Sunday"):
        assert scheduler.cron_trigger(same).get_next_fire_time(None, wednesday) == fire


@pytest.mark.parametrize(("line", "days"), [
    ("0 4 * * 1", "mon"),  # Monday in cron (APScheduler's own numbering would mean Tuesday)
    ("0 4 * * 1-5", "mon,tue,wed,thu,fri"),
    ("0 4 * * 5-7", "sun,fri,sat"),  # a range through 7 wraps to Sunday
    ("0 4 * * 6,7", "sun,sat"),
    ("0 4 * * */3", "sun,wed,sat"),  # 0, 3, 6
])
def test_validation_and_run_time_read_the_weekday_alike(tmp_path, line, days):
    load(tmp_path, line)  # accepted
    assert settings.cron_fields(line)["day_of_week"] == days
    assert str(scheduler.cron_trigger(line).fields[4]) == days  # fields: year month day week day_of_week ...


@pytest.mark.parametrize(("line", "problem"), [
    ("0 4 * * 8", "out of range 0-7"),
    ("0 4 * * funday", "not 0-7 or a day name"),
    ("0 25 * * 1", "'0 25 * * 1'"),  # hour out of range: APScheduler's own message, with the line
    ("0 4 * *", "not a 5-field cron expression"),
])
def test_bad_lines_are_refused_at_load_with_their_place(tmp_path, line, problem):
    with pytest.raises(ConfigError, match="cities\\[0\\].portals\\[0\\].schedule: .*" + problem.replace("*", "\\*")):
        load(tmp_path, line)
