"""The dashboard's CSV download writes through the one CSV writer: a real title made a formula stays text."""
from __future__ import annotations

import storage
from maturity.settings import load
from tests.test_csv_writer import FORMULA, TARGET, formula_city


def test_download_guards_a_formula_title(dash_app, tmp_path):
    from layouts import datasets  # a page module: importable once the app exists

    cfg = load(formula_city(tmp_path), environ={})
    catalog = storage.catalog(storage.open_db(cfg.storage_url), "chicago-socrata")
    assert catalog.loc[catalog["source_id"] == TARGET, "title"].tolist() == [FORMULA]  # stored as the portal wrote it
    download = datasets.csv_frame(catalog)
    assert download.loc[download["source_id"] == TARGET, "title"].tolist() == ["'" + FORMULA]
    text = download.to_csv(index=False)  # what dcc.send_data_frame(csv_frame(rows).to_csv, ...) sends
    assert "'=HYPERLINK(" in text and ',"=HYPERLINK(' not in text and ",=HYPERLINK(" not in text
