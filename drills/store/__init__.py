"""The results store: run records and their histories from many runners in one PostgreSQL
database, chained there by a sequence the database assigns, and leases on targets that hold
across hosts.

`settings` finds the store and its password, `schema` creates and migrates its tables,
`chain` inserts records as links of its chain, `verify` checks the chain, `runs` reads records
back for reports, `due`, `show` and the exporter, `leases` locks targets across hosts,
`spool` keeps what could not be stored until `drills store flush`, `files` imports and
exports record files.
"""
