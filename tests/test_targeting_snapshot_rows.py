"""One household's row of a snapshot, found from the row groups' ranges, is the row a scan
finds; households between, below or above the groups' ranges have none; an unsorted file is
scanned."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sijill.targeting.snapshot_rows import _Group, _GroupsKept, _layout, snapshot_values

IDS = [1000000011, 1000000022, 1000000033, 1000000044, 1000000055]


@pytest.mark.parametrize("text_keys", [True, False])
@pytest.mark.parametrize("rows_sorted", [True, False])
def test_rows_by_range_and_by_scan_agree(tmp_path, text_keys, rows_sorted):
    ids = IDS if rows_sorted else IDS[::-1]
    table = pa.table(
        {
            "household_id": [str(i) for i in ids] if text_keys else ids,
            "hh_size": [i % 7 for i in ids],
            "urban": [i % 2 == 0 for i in ids],
        }
    )
    path = tmp_path / f"snapshot-{text_keys}-{rows_sorted}.parquet"
    pq.write_table(table, path, row_group_size=2)
    digest = f"{text_keys}{rows_sorted}"
    for household in IDS:
        one = snapshot_values(path, digest, ["hh_size", "urban", "absent"], [household])
        assert one == {household: {"hh_size": household % 7, "urban": household % 2 == 0}}
    for missing in (999, 1000000012, 1000000034, 2000000000):
        assert snapshot_values(path, digest, ["hh_size"], [missing]) == {}
    both = snapshot_values(path, digest, ["hh_size"], [IDS[0], IDS[3]])
    assert both == {IDS[0]: {"hh_size": IDS[0] % 7}, IDS[3]: {"hh_size": IDS[3] % 7}}


def test_decoded_groups_are_kept_least_recent_out_within_the_byte_limit(tmp_path):
    ids = list(range(1, 101))
    path = tmp_path / "snapshot.parquet"
    pq.write_table(pa.table({"household_id": ids, "hh_size": [i % 7 for i in ids]}), path,
                   row_group_size=10)  # fmt: skip
    columns = ("household_id", "hh_size")
    layout = _layout(str(path), "digest")
    first = _Group.decoded(pq.ParquetFile(path).read_row_group(0, columns=list(columns)))
    assert first.nbytes > first.table.nbytes  # the keys' list is counted too
    kept = _GroupsKept(limit=3 * first.nbytes)
    for group in range(10):
        found = kept.read(str(path), "digest", layout, group, columns)
        assert found.keys == ids[group * 10 : group * 10 + 10]
        assert found.table["household_id"].to_pylist() == found.keys
    assert [key[2] for key in kept._groups] == [7, 8, 9]
    assert kept._bytes == 3 * first.nbytes
    # Read again, a group is the one kept, and becomes the most recent.
    assert (
        kept.read(str(path), "digest", layout, 7, columns)
        is kept._groups[(str(path), "digest", 7, columns)]
    )
    assert [key[2] for key in kept._groups] == [8, 9, 7]
    # Another checksum is another file: nothing kept is taken for it.
    kept.read(str(path), "other", layout, 9, columns)
    assert (str(path), "other", 9, columns) in kept._groups
