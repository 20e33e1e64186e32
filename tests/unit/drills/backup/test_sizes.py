"""Sizes in scenarios: PostgreSQL's units and 1024 multiples; clear errors otherwise."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from drills.backup.sizes import Size, format_size, parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("2GB", 2 * 1024**3),
        ("20MB", 20 * 1024**2),
        ("512kB", 512 * 1024),
        ("100B", 100),
        ("1.5GB", 3 * 1024**3 // 2),
        (" 500 TB ", 500 * 1024**4),
    ],
)
def test_sizes_in_postgresql_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("2gb", "unknown unit 'gb'"),
        ("2KB", "unknown unit 'KB'"),
        ("2GiB", "unknown unit 'GiB'"),
        ("2", "is not a size"),
        (2048, "is not a size"),
        (True, "is not a size"),
        ("-1GB", "is not a size"),
        ("0MB", "more than 0 bytes"),
        ("big", "is not a size"),
    ],
)
def test_anything_else_is_refused_with_the_units_spelled_out(value: object, error: str) -> None:
    with pytest.raises(ValueError, match=error) as raised:
        parse_size(value)
    assert "B, kB, MB, GB, TB" in str(raised.value) or "more than 0" in str(raised.value)


def test_the_annotated_type_validates_a_size_key() -> None:
    class Lab(BaseModel):
        size: Size

    assert Lab.model_validate({"size": "1GB"}).size == 1024**3
    with pytest.raises(ValidationError, match="unknown unit 'Gb'"):
        Lab.model_validate({"size": "1Gb"})


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (1023, "1023 B"), (312 * 1024**2, "312 MB"), (1.5 * 1024**3, "1.5 GB")],
)
def test_sizes_print_in_the_same_units(size: float, text: str) -> None:
    assert format_size(size) == text
