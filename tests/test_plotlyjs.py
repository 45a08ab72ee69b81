"""The graphs' smaller plotly.js (maturity/plotlyjs.py): fetched only when its sha512 is the pinned one, written
whole, and served where dcc.Graph asks for plotly.js; without it the graphs get Dash's full bundle.

No network: `npm` is a stand-in script on PATH that "packs" a tarball made here.
"""
from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from maturity import plotlyjs

SCRIPT = b"/* plotly.js (basic - minified) v9.9.9 */ window.Plotly = {};"


def tarball(script: bytes = SCRIPT, member: str = plotlyjs.MEMBER) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size = len(script)
        tar.addfile(info, io.BytesIO(script))
    return buf.getvalue()


def integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


@pytest.fixture
def fake_npm(tmp_path, monkeypatch):
    """An `npm` on PATH whose `pack` writes the tarball held in ./packed.tgz into --pack-destination."""
    tgz = tmp_path / "packed.tgz"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(f'#!/bin/sh\n# npm pack NAME --pack-destination DIR --silent\ncp "{tgz}" "$4/pkg-9.9.9.tgz"\n')
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(plotlyjs, "FOLDER", tmp_path / "vendor")
    return tgz


def test_the_pinned_tarball_is_written_whole(fake_npm, monkeypatch):
    data = tarball()
    fake_npm.write_bytes(data)
    monkeypatch.setitem(plotlyjs.INTEGRITY, "9.9.9", integrity(data))
    path = plotlyjs.fetch("9.9.9")
    assert path == plotlyjs.FOLDER / "plotly-basic-9.9.9.min.js"
    assert path.read_bytes() == SCRIPT
    assert [p.name for p in plotlyjs.FOLDER.iterdir()] == [path.name]  # no .part left behind


def test_a_tarball_that_is_not_the_pinned_one_writes_nothing(fake_npm, monkeypatch):
    fake_npm.write_bytes(tarball(SCRIPT + b"/* changed */"))
    monkeypatch.setitem(plotlyjs.INTEGRITY, "9.9.9", integrity(tarball()))
    with pytest.raises(ValueError, match="integrity"):
        plotlyjs.fetch("9.9.9")
    assert not plotlyjs.FOLDER.exists()


def test_a_version_without_a_pinned_sha512_is_not_fetched(fake_npm):
    fake_npm.write_bytes(tarball())
    with pytest.raises(ValueError, match="no sha512 pinned"):
        plotlyjs.fetch("9.9.8")
    assert not plotlyjs.FOLDER.exists()


def test_a_failed_fetch_says_so_and_the_install_goes_on(fake_npm, monkeypatch, capsys):
    monkeypatch.setattr(plotlyjs, "plotly_version", lambda: "9.9.8")  # nothing pinned for it
    assert plotlyjs.main([]) == 0
    err = capsys.readouterr().err
    assert "skipped (no sha512 pinned" in err and "full bundle" in err


def test_the_pinned_version_is_plotly_pys_and_its_sha512_is_well_formed():
    """The figures' JSON is written for plotly.py's plotly.js: its version must have a pinned bundle."""
    version = plotlyjs.plotly_version()
    assert version in plotlyjs.INTEGRITY
    digest = base64.b64decode(plotlyjs.INTEGRITY[version].removeprefix("sha512-"))
    assert len(digest) == 64


def test_the_app_serves_the_bundle_where_the_graphs_ask_for_plotly(tmp_path, monkeypatch, layout_db):
    from maturity import app

    url, cfg = layout_db
    graph_asks = "/" + app.PLOTLYJS_PATH  # dcc.Graph's address for plotly.js (serve_locally)
    monkeypatch.setattr(plotlyjs, "FOLDER", tmp_path)
    full = app.create_app(cfg, url=url, warm=False).server.test_client().get(graph_asks)
    assert full.status_code == 200 and len(full.data) > 3_000_000  # no bundle fetched: Dash's full plotly.js
    plotlyjs.bundle_path(plotlyjs.plotly_version()).write_bytes(SCRIPT)
    small = app.create_app(cfg, url=url, warm=False).server.test_client().get(graph_asks)
    # the bundle, first line the compile hint (compiled off the main thread while it streams in)
    assert small.status_code == 200 and small.data == plotlyjs.COMPILE_HINT + SCRIPT
    assert small.mimetype == "text/javascript"
    again = app.create_app(cfg, url=url, warm=False).server.test_client().get(
        graph_asks, headers={"If-None-Match": small.headers["ETag"]})
    assert again.status_code == 304  # the daily visitor's browser keeps it


@pytest.fixture(scope="module")
def layout_db(tmp_path_factory):
    from tests.layouts import filler

    tmp: Path = tmp_path_factory.mktemp("plotlyjs")
    url = f"sqlite:///{tmp / 'maturity.db'}"
    cfg = filler.fill(url, tmp)
    yield url, cfg
    import storage

    storage.dispose(url)
