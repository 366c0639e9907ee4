"""The base of every resource model: camelCase on the wire, nothing unknown accepted."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
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
    )

    def dump(self) -> dict[str, object]:
        """The manifest form: camelCase keys, unset optional fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
