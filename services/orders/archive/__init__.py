"""Orders' archive (README "Archive"): closed orders old enough leave the hot tables, whole.

- `rules`: which orders qualify (no I/O).
- `store`: the archive tables' repository (`OrderArchive`): move a batch, bring one back, read, export
  (a search of the order list reads the archive through OrderRepository.list).
- `job`: the job that moves them, one replica at a time (the lease `orders-archive`), measured.
"""
