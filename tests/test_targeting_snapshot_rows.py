"""One household's row of a snapshot, found from the row groups' ranges, is the row a scan
finds; households between, below or above the groups' ranges have none; an unsorted file is
scanned."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sijill.targeting.snapshot_rows import snapshot_values

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
