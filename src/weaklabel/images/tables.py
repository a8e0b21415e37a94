"""The image stages' CSV writer and reader now live in :mod:`weaklabel.tables` (the
house's one table module); this re-export keeps ``from weaklabel.images.tables import
…`` working for one release. Import from :mod:`weaklabel.tables`."""

from weaklabel.tables import read_rows_csv, write_rows_csv

__all__ = ["read_rows_csv", "write_rows_csv"]
