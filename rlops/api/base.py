"""The base of every resource model: camelCase on the wire, nothing unknown accepted."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic.alias_generators import to_camel

GROUP = "rlops.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


class Model(BaseModel):
    """A resource fragment.

    Fields are snake_case in Python and camelCase in manifests. Unknown fields are
    errors, never silently dropped: a typo in a manifest must not lose a setting.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=False,
        validate_default=True,
        allow_inf_nan=False,
    )

    @field_validator("*", mode="after")
    @classmethod
    def _finite(cls, value: Any) -> Any:
        """No NaN or infinity anywhere, also inside free-form mappings and lists (`config`,
        a sweep's values): the error names the path below the field."""
        if isinstance(value, dict | list | tuple):
            where = non_finite(value)
            if where is not None:
                raise ValueError(f"{where or 'a value'} is not a finite number (NaN or infinity)")
        return value

    def dump(self) -> dict[str, object]:
        """The manifest form: camelCase keys, unset optional fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def non_finite(value: Any, path: str = "") -> str | None:
    """The dotted path of the first NaN or infinity in `value` (`""` for `value` itself)."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    items: Any = ()
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    for key, item in items:
        where = non_finite(item, f"{path}.{key}" if path else str(key))
        if where is not None:
            return where
    return None
