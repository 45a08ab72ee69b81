"""The CLI's own failures are one line and an exit status, not a traceback."""
from __future__ import annotations

import pytest

from maturity import cli

CONFIG = """[storage]
url = "sqlite:///db.sqlite"
[[cities]]
key = "town"
name = "Town"
[[cities.portals]]
kind = "dcat"
url = "https://town.example/data.json"
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    return path


@pytest.mark.parametrize("url", [
    "postgresql+psycopg://postgres:hunter2@127.0.0.1:1/nowhere",  # nothing listens on port 1: refused at once
    "sqlite:////proc/no/such/dir/maturity.db",  # a path that cannot be created
], ids=["postgres-refused", "sqlite-unopenable"])
@pytest.mark.parametrize("command", [["status"], ["harvest", "-q"], ["scores", "--city", "town"]])
def test_an_unreachable_database_is_one_line_and_exit_3(config, monkeypatch, capsys, url, command):
    monkeypatch.setenv("DATABASE_URL", url)
    assert cli.main(["--config", str(config), *command]) == cli.EXIT_NO_DATABASE
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: cannot reach the database "), err
    assert "hunter2" not in err and "Traceback" not in err


def test_export_out_naming_a_file_is_a_usage_error(config, tmp_path, capsys):
    target = tmp_path / "report.html"
    target.write_text("keep me")
    assert cli.main(["--config", str(config), "export", "--out", str(target)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err == f"error: --out {target}: is a file; give a directory (dated folders are written inside it)"
    assert target.read_text() == "keep me"


def test_export_out_under_a_file_is_one_line(config, tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    assert cli.main(["--config", str(config), "export", "--out", str(tmp_path / "afile" / "sub")]) == cli.EXIT_FAILED
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: cannot write the export under"), err
