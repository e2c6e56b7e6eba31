"""Every file Sijill reads comes through here, with one error contract.

- Tables (CSV, XLSX, Parquet: agencies' lists, area lists, and later survey data, other
  agencies' lists, compliance data, payment status reports) are read by `read_table` in
  batches of text columns, each row with `_row`, where a clerk finds it (the line of a CSV,
  the row of a sheet, the record of a Parquet file). A malformed row becomes a reject (its
  line, a reason code and a short translatable reason, never its content) and reading goes on.
- Documents (YAML, JSON: mappings, parameters, area shapes, manifests) are read by `read_yaml`
  and `read_json`.
- A file that cannot be read at all raises `UnreadableFile`, an `InvalidInput` whose one-line
  message names the file and the problem, never what the file holds.
"""

from sijill.core.files.contract import REJECTS, ROW, Reason, UnreadableFile
from sijill.core.files.documents import read_json, read_yaml
from sijill.core.files.tabular import TABLE_SUFFIXES, TableBatch, count_rows, read_table

__all__ = [
    "REJECTS",
    "ROW",
    "TABLE_SUFFIXES",
    "Reason",
    "TableBatch",
    "UnreadableFile",
    "count_rows",
    "read_json",
    "read_table",
    "read_yaml",
]
