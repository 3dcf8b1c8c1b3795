"""Codec measurements: one row per (run, codec), measured again when its file is gone."""
from fer_utils import config, data, measure, models, train


def test_a_row_whose_file_is_gone_is_measured_again_and_replaced(tmp_path):
    runs_root, table = tmp_path / "runs", tmp_path / "codecs.csv"
    run = {"run_id": "irnet-w0.5-x", "arch": "irnet", "width": 0.5, "data_source": "synthetic"}
    model = models.irnet(0.5)
    run["params"] = model.count_params()
    train.weights_path(run["run_id"], runs_root).parent.mkdir(parents=True)
    model.save_weights(train.weights_path(run["run_id"], runs_root))
    prepared = train.prepare(data.synthetic(140, seed=2), config.PROFILES["smoke"])

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
