"""CelebaReader on tiny synthetic copies of the official layout."""
import os

import numpy as np
import pytest

from facezoo.attributes import CELEBA_NAMES
from facezoo.data.celeba import CelebaReader
from facezoo.data.records import DataFormatError


def test_reads_labels_splits_identity_landmarks(celeba_layout):
    root, names, values = celeba_layout()
    records = list(CelebaReader(root).records())
    assert [r.source for r in records] == [f"img_align_celeba/{n}" for n in names]
    assert [r.split for r in records] == ["train"] * 4 + ["val", "test"]
    for r, vals in zip(records, values):
        assert r.labels == {n: int(v == 1) for n, v in zip(CELEBA_NAMES, vals)}
        assert os.path.exists(r.image)
    assert records[0].identity == "100" and records[5].identity == "102"
    np.testing.assert_array_equal(records[0].landmarks, [[5, 8], [12, 8], [9, 12], [6, 16], [12, 16]])


def test_optional_files_and_no_partition(celeba_layout):
    root, _, _ = celeba_layout(landmarks=False, identity=False)
    records = list(CelebaReader(root, partition_file=False).records())
    assert {r.split for r in records} == {"train"}
    assert all(r.identity is None and r.landmarks is None for r in records)


def _rewrite(path, old, new):
    path.write_bytes(path.read_bytes().replace(old, new, 1))


@pytest.mark.parametrize("old,new,message", [
    (b"Arched_Eyebrows Attractive", b"Attractive Arched_Eyebrows", "column 2: expected 'Arched_Eyebrows'"),
    (b"6\r\n", b"7\r\n", "declares 7 rows, found 6"),
    (b"000002.jpg -1", b"000002.jpg  0", "line 4"),
])
def test_bad_attribute_file(celeba_layout, old, new, message):
    root, _, _ = celeba_layout()
    _rewrite(root / "list_attr_celeba.txt", old, new)
    with pytest.raises(DataFormatError, match=message):
        list(CelebaReader(root).records())


def test_missing_and_extra_images(celeba_layout, write_jpeg):
    root, _, _ = celeba_layout()
    os.remove(root / "img_align_celeba" / "000003.jpg")
    with pytest.raises(DataFormatError, match=r"not in .*'000003.jpg' \(1 in all\)"):
        list(CelebaReader(root).records())
    write_jpeg(root / "img_align_celeba" / "000003.jpg")
    for i in range(7, 14):
        write_jpeg(root / "img_align_celeba" / f"{i:06d}.jpg")
    with pytest.raises(DataFormatError, match=r"does not list: '000007.jpg'.*, \.\.\. \(7 in all\)"):
        list(CelebaReader(root).records())


def test_missing_required_file(celeba_layout):
    root, _, _ = celeba_layout()
    os.remove(root / "list_eval_partition.txt")
    with pytest.raises(FileNotFoundError, match="list_eval_partition.txt"):
        list(CelebaReader(root).records())
