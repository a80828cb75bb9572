import pytest

from facezoo.attributes import BP4D_AUS
from facezoo.data import READERS
from facezoo.data.bp4d import Bp4dReader
from facezoo.data.records import DataFormatError, identity_split
from facezoo.errors import MissingDataError

# The release's header: AU numbers, with 0 over the frame column; more AUs than the 12 read.
RELEASE_AUS = (1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 22, 23, 24, 27, 28)


def write_task(root, write_jpeg, subject, task, rows, header=None, frames=None, pad=4):
    """One occurrence CSV (rows: (frame, {au: value}), other AUs 0) and an image per frame in ``frames``."""
    header = header or ["0"] + [str(a) for a in RELEASE_AUS]
    lines = [",".join(header)]
    for frame, values in rows:
        lines.append(",".join([str(frame)] + [str(values.get(int(h.strip().lower().lstrip("au") or 0), 0))
                                              for h in header[1:]]))
    path = root / "AUCoding" / "AU_OCC" / f"{subject}_{task}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\r\n".join(lines) + "\r\n")
    for i, frame in enumerate(frames if frames is not None else [f for f, _ in rows]):
        write_jpeg(root / "Sequences" / subject / task / f"{frame:0{pad}d}.jpg", size=(8, 8), seed=i)
    return path


def test_release_layout_labels_and_unknowns(tmp_path, write_jpeg):
    write_task(tmp_path, write_jpeg, "F001", "T1", [(2440, {1: 1, 12: 1}), (2441, {12: 9, 24: 1}),
                                                   (2442, {a: 9 for a in RELEASE_AUS})])
    write_task(tmp_path, write_jpeg, "M003", "T8", [(7, {4: 1, 5: 1})], pad=1)
    reader = READERS["bp4d"](tmp_path)
    records = list(reader.records())
    assert reader.problems == []
    assert [(r.source, r.identity, r.split) for r in records] == [
        ("Sequences/F001/T1/2440.jpg", "F001", "train"), ("Sequences/F001/T1/2441.jpg", "F001", "train"),
        ("Sequences/M003/T8/7.jpg", "M003", "train")]
    first, second, third = (r.labels for r in records)
    assert first == {f"AU{a}": int(a in (1, 12)) for a in BP4D_AUS}
    assert "AU12" not in second and second["AU24"] == 1 and len(second) == len(BP4D_AUS) - 1   # 9: unknown
    assert third == {f"AU{a}": int(a == 4) for a in BP4D_AUS}           # AU5 is read only when asked for
    assert reader.label_space.names == [f"AU{a}" for a in BP4D_AUS]
    assert all(r.image.startswith(str(tmp_path)) for r in records)


def test_named_header_and_chosen_aus(tmp_path, write_jpeg):
    write_task(tmp_path, write_jpeg, "F002", "T2", [(1, {5: 1}), (2, {17: 1})],
               header=["frame", "AU05", " au17 ", "AU1"])
    reader = Bp4dReader(tmp_path, aus=(5, 17))
    assert [r.labels for r in reader.records()] == [{"AU5": 1, "AU17": 0}, {"AU5": 0, "AU17": 1}]
    assert reader.label_space.names == ["AU5", "AU17"]


def test_malformed_rows_are_reported_with_file_and_line(tmp_path, write_jpeg):
    path = write_task(tmp_path, write_jpeg, "F001", "T1", [(10, {}), (11, {2: 1}), (12, {})],
                      frames=[10, 11, 12])
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace(",1,", ",2,", 1)                       # AU2 = 2: left out, row kept
    lines.insert(3, "x7," + ",".join("0" * len(RELEASE_AUS)))           # line 4: not a frame number
    lines.insert(4, "11," + ",".join("0" * len(RELEASE_AUS)))           # line 5: frame 11 again
    lines.insert(5, "13," + ",".join("0" * len(RELEASE_AUS)))           # line 6: no image
    lines.insert(6, "14,0,1")                                           # line 7: short row
    path.write_text("\n".join(lines) + "\n")
    (tmp_path / "AUCoding" / "AU_OCC" / "notes.csv").write_text("0,1\n1,0\n")
    reader = Bp4dReader(tmp_path)
    records = list(reader.records())
    assert [r.source for r in records] == ["Sequences/F001/T1/0010.jpg", "Sequences/F001/T1/0011.jpg",
                                           "Sequences/F001/T1/0012.jpg"]
    assert "AU2" not in records[1].labels and records[1].labels["AU1"] == 0
    where = {p.source: p.reason for p in reader.problems}
    assert set(where) == {"F001_T1.csv:3", "F001_T1.csv:4", "F001_T1.csv:5", "F001_T1.csv:6", "F001_T1.csv:7",
                          "notes.csv"}
    assert "AU2" in where["F001_T1.csv:3"] and "got '2'" in where["F001_T1.csv:3"]
    assert "expected a frame number, got 'x7'" in where["F001_T1.csv:4"]
    assert "coded twice" in where["F001_T1.csv:5"]
    assert "frame 13 has no image in Sequences/F001/T1/" in where["F001_T1.csv:6"]
    assert "expected 24 fields" in where["F001_T1.csv:7"]


def test_layout_errors(tmp_path, write_jpeg):
    with pytest.raises(MissingDataError, match="AU_OCC.* does not exist"):
        Bp4dReader(tmp_path)
    path = write_task(tmp_path, write_jpeg, "F001", "T1", [(1, {})], header=["0", "1", "2"])
    with pytest.raises(DataFormatError, match=r"F001_T1.csv:1: header has no column for \['AU4', 'AU6'"):
        list(Bp4dReader(tmp_path).records())
    path.write_text("time,1,2\n1,0,0\n")
    with pytest.raises(DataFormatError, match="F001_T1.csv:1: the first column must be the frame"):
        list(Bp4dReader(tmp_path, aus=(1, 2)).records())
    path.write_text("0,1,2\n5,0,1\n")                                   # frame 5 has no image
    with pytest.raises(DataFormatError, match="not one coded frame"):
        list(Bp4dReader(tmp_path, aus=(1, 2)).records())


def test_subjects_never_straddle_a_split(tmp_path, write_jpeg):
    for s in range(6):
        write_task(tmp_path, write_jpeg, f"F{s:03d}", "T1", [(1, {}), (2, {12: 1})])
    records = identity_split(list(Bp4dReader(tmp_path).records()), val_percent=50)
    splits = {}
    for r in records:
        splits.setdefault(r.identity, set()).add(r.split)
    assert all(len(s) == 1 for s in splits.values()) and len(splits) == 6


def test_data_convert_keeps_unknown_aus_masked(tmp_path, write_jpeg):
    import argparse
    import os

    import tensorflow as tf

    from facezoo.data import cli
    from facezoo.data.tfrecord import read_manifest
    write_task(tmp_path / "bp4d", write_jpeg, "F001", "T1", [(1, {12: 1}), (2, {12: 9, 1: 1})])
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", "convert", "bp4d", "--root", str(tmp_path / "bp4d"), "--out",
                              str(tmp_path / "out"), "--shards", "1", "--no-progress"])
    assert args.func(args) == 0
    manifest = read_manifest(tmp_path / "out")
    shards = [os.path.join(manifest["directory"], s["file"]) for split in manifest["splits"].values()
              for s in split["shards"]]
    examples = [tf.train.Example.FromString(raw.numpy()).features.feature for raw in tf.data.TFRecordDataset(shards)]
    by_source = {e["source"].bytes_list.value[0].decode(): e for e in examples}
    assert set(by_source) == {"Sequences/F001/T1/0001.jpg", "Sequences/F001/T1/0002.jpg"}
    first, second = by_source["Sequences/F001/T1/0001.jpg"], by_source["Sequences/F001/T1/0002.jpg"]
    assert first["label/AU12"].int64_list.value[0] == 1 and first["mask/AU12"].float_list.value[0] == 1.0
    assert second["mask/AU12"].float_list.value[0] == 0.0                       # coded 9: unknown
    assert second["label/AU1"].int64_list.value[0] == 1 and second["mask/AU1"].float_list.value[0] == 1.0
