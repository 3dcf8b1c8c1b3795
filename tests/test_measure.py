"""Codec measurements: one row per (run, codec), kept while it belongs to the run's registry row."""
import pandas as pd

from fer_utils import config, data, measure, models, runs


def saved_run(tmp_path, timestamp="2026-01-01T00:00:00+00:00"):
    """A registry row of an untrained IRNet w0.5 whose weights are saved in its run folder, the codec
    table's path and a small prepared synthetic split: (run, runs_root, table, prepared)."""
    runs_root, table = tmp_path / "runs", tmp_path / "codecs.csv"
    run = {"run_id": "irnet-w0.5-x", "arch": "irnet", "width": 0.5, "data_source": "synthetic",
           "timestamp": timestamp, "model": "IRNet w0.5"}
    model = models.irnet(0.5)
    run["params"] = model.count_params()
    runs.weights_path(run["run_id"], runs_root).parent.mkdir(parents=True)
    model.save_weights(runs.weights_path(run["run_id"], runs_root))
    return run, runs_root, table, runs.prepare(data.synthetic(140, seed=2), config.PROFILES["smoke"])


def count_evaluations(monkeypatch) -> list:
    """The models ``runs.evaluate`` is called on from now on, in order."""
    calls = []
    evaluate = runs.evaluate
    monkeypatch.setattr(runs, "evaluate", lambda m, *a, **k: calls.append(m) or evaluate(m, *a, **k))
    return calls


def test_a_row_whose_file_is_gone_is_measured_again_and_replaced(tmp_path):
    runs_root, table = tmp_path / "runs", tmp_path / "codecs.csv"
    run = {"run_id": "irnet-w0.5-x", "arch": "irnet", "width": 0.5, "data_source": "synthetic"}
    model = models.irnet(0.5)
    run["params"] = model.count_params()
    runs.weights_path(run["run_id"], runs_root).parent.mkdir(parents=True)
    model.save_weights(runs.weights_path(run["run_id"], runs_root))
    prepared = runs.prepare(data.synthetic(140, seed=2), config.PROFILES["smoke"])

    first = measure.measure_codecs(run, ["fp16", "kmeans-3"], prepared, table, runs_root)
    assert sorted(first.codec) == ["fp16", "kmeans-3"]
    size = measure.codec_path(run["run_id"], "kmeans-3", runs_root).stat().st_size
    assert int(first.set_index("codec").loc["kmeans-3", "bytes"]) == size

    again = measure.measure_codecs(run, ["fp16", "kmeans-3"], prepared, table, runs_root)
    assert len(again) == 2  # both files there: nothing re-measured, nothing appended

    measure.codec_path(run["run_id"], "kmeans-3", runs_root).unlink()  # e.g. the run was trained again
    third = measure.measure_codecs(run, ["fp16", "kmeans-3"], prepared, table, runs_root)
    assert sorted(third.codec) == ["fp16", "kmeans-3"]  # replaced, not duplicated
    assert measure.codec_path(run["run_id"], "kmeans-3", runs_root).exists()
    assert len(measure.read_table(table)) == 2
    measure.codec_path(run["run_id"], "fp16", runs_root).unlink()
    assert measure.measured(run, table, runs_root) == {"kmeans-3"}  # a row without its file is not done


def test_a_row_stays_valid_without_its_file_until_the_run_is_trained_again(tmp_path):
    runs_root, table = tmp_path / "runs", tmp_path / "codecs.csv"
    run = {"run_id": "irnet-w0.5-x", "arch": "irnet", "width": 0.5, "data_source": "synthetic",
           "timestamp": "2026-01-01T00:00:00+00:00"}
    model = models.irnet(0.5)
    run["params"] = model.count_params()
    runs.weights_path(run["run_id"], runs_root).parent.mkdir(parents=True)
    model.save_weights(runs.weights_path(run["run_id"], runs_root))
    prepared = runs.prepare(data.synthetic(140, seed=2), config.PROFILES["smoke"])

    first = measure.measure_codecs(run, ["int8"], prepared, table, runs_root)
    assert first.run_timestamp.tolist() == [run["timestamp"]]
    measure.codec_path(run["run_id"], "int8", runs_root).unlink()  # a fresh machine: the row, not the file
    assert measure.measured(run, table, runs_root) == {"int8"}
    measure.measure_codecs(run, ["int8"], prepared, table, runs_root)
    assert not measure.codec_path(run["run_id"], "int8", runs_root).exists()  # nothing re-measured

    retrained = dict(run, timestamp="2026-02-01T00:00:00+00:00")
    assert measure.measured(retrained, table, runs_root) == set()
    again = measure.measure_codecs(retrained, ["int8"], prepared, table, runs_root)
    assert again.run_timestamp.tolist() == [retrained["timestamp"]]  # replaced, not duplicated
    assert measure.codec_path(run["run_id"], "int8", runs_root).exists()
    path = measure.codec_path(run["run_id"], "int8", runs_root)
    assert measure.read_table(table).file_sha256.tolist() == [measure.file_digest(path)]
    content = bytearray(path.read_bytes())
    content[-1] ^= 1  # the same size, not the file measured (an interrupted measurement, say)
    path.write_bytes(bytes(content))
    assert measure.measured(retrained, table, runs_root) == set()


def test_an_older_codec_table_reads_with_blank_timestamps_and_gains_the_column(tmp_path):
    import pandas as pd

    table = tmp_path / "codecs.csv"
    for added in (1, 2):  # a table from before file_sha256, and one from before run_timestamp too
        old = {c: [1] for c in measure.COLUMNS[:-added]} | {"run_id": ["r"], "codec": ["int8"]}
        pd.DataFrame(old).to_csv(table, index=False)
        read = measure.read_table(table)
        assert tuple(read.columns) == measure.COLUMNS and read.file_sha256.isna().all()
    assert read.run_timestamp.isna().all()
    assert measure.measured({"run_id": "r", "timestamp": "t"}, table, tmp_path) == set()  # no file: not valid


def test_a_cached_row_keeps_its_measurement_and_takes_its_runs_current_name(tmp_path):
    table = tmp_path / "codecs.csv"
    rows = {c: [1, 1] for c in measure.COLUMNS} | {"run_id": ["kd", "other"], "codec": ["int8", "int8"],
                                                   "model": ["IRNet (ours) w1.2 + KD", "kept as measured"],
                                                   "private_acc": [0.6656, 0.5]}
    pd.DataFrame(rows).to_csv(table, index=False)
    registry = pd.DataFrame([{"run_id": "kd", "arch": "irnet", "width": 1.2, "seed": 0,
                              "recipe": "wsd120|tag:kdh-irnet1.2s0e200kdh+irnet1.2-online-T2-a0.5"}])
    out = measure.relabel(table, registry)
    assert list(out.model) == ["IRNet (ours) w1.2 + KD (teacher irnet1.2s0e200kdh+irnet1.2)", "kept as measured"]
    written = measure.read_table(table)
    assert list(written.model) == list(out.model) and list(written.private_acc) == [0.6656, 0.5]
    assert measure.relabel(table, registry.iloc[:0]).equals(written)  # no runs: nothing renamed


def test_confusion_is_cached_per_registry_row_and_predicted_again_after_a_retrain(tmp_path):
    import pandas as pd

    runs_root, table = tmp_path / "runs", tmp_path / "confusion.csv"
    model = models.irnet(0.5)
    runs.weights_path("irnet-w0.5-x", runs_root).parent.mkdir(parents=True)
    model.save_weights(runs.weights_path("irnet-w0.5-x", runs_root))
    ds = data.synthetic(140, seed=2)
    calls = []

    def load_test():
        calls.append(1)
        return runs.prepare(ds, config.PROFILES["smoke"])["tests"]["PrivateTest"]

    row = {"run_id": "irnet-w0.5-x", "arch": "irnet", "width": 0.5, "model": "IRNet (ours) w0.5",
           "timestamp": "2026-01-01T00:00:00+00:00"}
    gone = dict(row, run_id="cnn-w1-elsewhere", model="HW3 CNN")  # no weights on this machine
    first = measure.confusion_counts(pd.DataFrame([row, gone]), load_test, table, runs_root)
    n_test = len(ds.subset("PrivateTest").labels)
    assert first["count"].sum() == n_test and set(first.run_id) == {"irnet-w0.5-x"}
    assert set(first.true) <= set(range(7)) and len(calls) == 1

    measure.confusion_counts(pd.DataFrame([row]), load_test, table, runs_root)
    assert len(calls) == 1  # cached

    retrained = dict(row, timestamp="2026-02-01T00:00:00+00:00")
    again = measure.confusion_counts(pd.DataFrame([retrained]), load_test, table, runs_root)
    assert len(calls) == 2 and again["count"].sum() == n_test
    assert set(pd.read_csv(table).run_timestamp) == {retrained["timestamp"]}  # the old rows were replaced


def test_a_pruned_copy_is_measured_beside_its_source_evaluated_once(tmp_path, monkeypatch):
    run, runs_root, table, prepared = saved_run(tmp_path)
    calls = count_evaluations(monkeypatch)

    rows = measure.measure_models(pd.DataFrame([run]), ["int8", "kmeans-3"], prepared, table,
                                  pruned_codecs=["kmeans-3"], prune_epochs=1, runs_root=runs_root)
    assert sorted(rows.codec) == ["int8", "kmeans-3", "kmeans-3@0.5"]
    assert len(calls) == 1 + 3  # the source once, then each decoded file
    assert rows.float32_public.nunique() == 1 and rows.float32_private.nunique() == 1
    pruned = rows.set_index("codec").loc["kmeans-3@0.5"]
    assert pruned.public_drop == round((pruned.float32_public - pruned.public_acc) * 100, 2)


def test_a_codec_added_later_reuses_the_float32_accuracies_of_the_valid_rows(tmp_path, monkeypatch):
    run, runs_root, table, prepared = saved_run(tmp_path)
    measure.measure_codecs(run, ["kmeans-4"], prepared, table, runs_root)
    calls = count_evaluations(monkeypatch)

    rows = measure.measure_codecs(run, ["kmeans-4", "kmeans-4-bn2"], prepared, table, runs_root).set_index("codec")
    assert len(calls) == 1  # the new file only: the source's accuracies come from the kmeans-4 row
    assert rows.loc["kmeans-4-bn2", "float32_public"] == rows.loc["kmeans-4", "float32_public"]
    assert rows.loc["kmeans-4-bn2", "bytes"] < rows.loc["kmeans-4", "bytes"]
    retrained = dict(run, timestamp="2026-02-01T00:00:00+00:00")  # rows of a training before: not reused
    measure.measure_codecs(retrained, ["int8"], prepared, table, runs_root)
    assert len(calls) == 1 + 2


def test_a_pruned_copy_never_takes_its_float32_accuracies_from_a_stale_row(tmp_path):
    run, runs_root, table, prepared = saved_run(tmp_path, "2026-02-01T00:00:00+00:00")
    # a row of another codec left from a training before this one, first in the table
    stale = {c: None for c in measure.COLUMNS} | {
        "run_id": run["run_id"], "codec": "fp16@0.5", "bytes": 1, "float32_public": 0.99, "float32_private": 0.99,
        "run_timestamp": "2026-01-01T00:00:00+00:00"}
    pd.DataFrame([stale], columns=list(measure.COLUMNS)).to_csv(table, index=False)

    rows = measure.measure_models(pd.DataFrame([run]), ["int8"], prepared, table,
                                  pruned_codecs=["kmeans-3"], prune_epochs=1, runs_root=runs_root)
    fresh = rows[rows.run_timestamp == run["timestamp"]].set_index("codec")
    assert sorted(fresh.index) == ["int8", "kmeans-3@0.5"]
    assert fresh.loc["kmeans-3@0.5", "float32_public"] == fresh.loc["int8", "float32_public"] != 0.99
    assert fresh.loc["kmeans-3@0.5", "float32_private"] == fresh.loc["int8", "float32_private"] != 0.99
