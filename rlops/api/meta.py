"""The pieces of Kubernetes object metadata and status the resources use."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from rlops.api.base import Model


class ObjectMeta(Model):
    """The subset of metadata rlops reads; everything else is kept as it is."""

    model_config = ConfigDict(extra="allow")

    name: str | None = Field(default=None, description="Object name.")
    namespace: str | None = Field(default=None, description="Object namespace.")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Annotations.")
    uid: str | None = Field(default=None, description="Unique id set by the API server.")
    generation: int | None = Field(default=None, description="Spec generation.")


class Condition(Model):
    """A standard Kubernetes condition (metav1.Condition)."""

    type: str = Field(description="Ready, Reconciling or Stalled.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="CamelCase reason.")
    message: str = Field(default="", description="Human-readable detail.")
    last_transition_time: str | None = Field(default=None, description="When status changed.")
    observed_generation: int | None = Field(default=None, description="Generation observed.")
