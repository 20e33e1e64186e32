"""Backups and restores in the PostgreSQL labs: filling a database to a size, following a
pgBackRest command's progress, checking a restored database. Importing the package loads none
of its modules."""
