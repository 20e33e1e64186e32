"""Backups, WAL archive and restores of the PostgreSQL labs (pgBackRest)."""
