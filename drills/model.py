"""Base for configuration models: unknown keys are errors that name the key and the choices."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    implicit_keys: ClassVar[frozenset[str]] = frozenset()  # set by the loader, not written

    @model_validator(mode="before")
    @classmethod
    def _known_keys_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            allowed = {f.alias or name for name, f in cls.model_fields.items()}
            for key in data:
                if key not in allowed:
                    raise PydanticCustomError(
                        "unknown_key",
                        "unknown key '{key}' (expected one of: {allowed})",
                        {
                            "key": str(key),
                            "allowed": ", ".join(sorted(allowed - cls.implicit_keys)),
                        },
                    )
        return data
