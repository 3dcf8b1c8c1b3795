"""The results registry appends rows and refuses a malformed file."""
import pandas as pd
import pytest

from fer_utils import registry


def row(**kw):
    base = {c: "x" for c in registry.COLUMNS}
    base.update(kw)
    return base


def test_append_creates_header_and_keeps_rows(tmp_path):
    path = tmp_path / "runs.csv"
    registry.append(row(run_id="a", params=1), path)
    registry.append(row(run_id="b", params=2), path)
    df = registry.read(path)
    assert df["run_id"].tolist() == ["a", "b"]
    assert tuple(df.columns) == registry.COLUMNS


def test_malformed_header_is_an_error_not_a_reset(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("something,else\n1,2\n")
    with pytest.raises(ValueError, match=r"runs.csv, line 1: malformed registry header"):
        registry.append(row(run_id="a"), path)
    assert path.read_text() == "something,else\n1,2\n"


def test_malformed_row_is_an_error(tmp_path):
    path = tmp_path / "runs.csv"
    registry.append(row(run_id="a"), path)
    with open(path, "a") as fh:
        fh.write("only,three,fields\n")
    with pytest.raises(ValueError, match=r"line 3: malformed registry row"):
        registry.read(path)


def test_row_with_missing_columns_is_refused(tmp_path):
    bad = row()
    del bad["params"]
    with pytest.raises(ValueError, match="missing \\['params'\\]"):
        registry.append(bad, tmp_path / "runs.csv")


def test_setup_sends_only_full_real_runs_to_the_committed_folders():
    from types import SimpleNamespace

    from fer_utils import config, paths

    real = SimpleNamespace(synthetic=False, label="FER2013 (fer2013.csv.gz)")
    fake = SimpleNamespace(synthetic=True, label="synthetic (10 faces, seed 0)")
    try:
        full_real = config.setup("full", real)
        assert (full_real.figures, full_real.results, full_real.report) == (
            paths.FIGURES_DIR, paths.RESULTS_DIR, paths.REPORT_PATH) and full_real.committed
        for profile, ds in (("smoke", real), ("full", fake), ("smoke", fake)):
            s = config.setup(profile, ds)
            assert not s.committed
            assert paths.BUILD_DIR in s.figures.parents and paths.BUILD_DIR in s.results.parents
            assert s.report.parent == paths.BUILD_DIR
        assert "synthetic" in config.setup("full", fake).caption()
    finally:
        config._CURRENT = None


def test_per_profile_picks_the_smoke_choice_only_in_smoke():
    from fer_utils import config

    assert config.per_profile(config.PROFILES["smoke"], "all", "few") == "few"
    assert config.per_profile(config.PROFILES["full"], "all", "few") == "all"
    assert config.per_profile(config.PROFILES["full-plateau"], "all", "few") == "all"


def test_an_older_registry_reads_with_its_new_columns_blank_and_is_extended_on_append(tmp_path):
    path = tmp_path / "runs.csv"
    old = registry.COLUMNS[:-len(registry.ADDED)]  # the header before the added columns
    path.write_text(",".join(old) + "\n" + ",".join("1" if c == "params" else "x" for c in old) + "\n")
    df = registry.read(path)
    assert tuple(df.columns) == registry.COLUMNS and df["shared"].isna().all() and df["params"].tolist() == [1]
    assert path.read_text().startswith(",".join(old) + "\n")  # reading never writes
    registry.append(row(run_id="new", params=2, shared=0.5), path)
    df = registry.read(path)
    assert path.read_text().splitlines()[0] == ",".join(registry.COLUMNS)
    assert df["params"].tolist() == [1, 2] and df["shared"].isna().tolist() == [True, False]
    assert pd.isna(df["public_tta_acc"].iloc[0]) and df["public_tta_acc"].iloc[1] == "x"  # blank in the older row


def test_a_header_that_is_not_an_older_registrys_is_still_refused(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text(",".join(registry.COLUMNS[:3]) + "\n1,2,3\n")  # stops before a column that was never added
    with pytest.raises(ValueError, match="malformed registry header"):
        registry.read(path)
