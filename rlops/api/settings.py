"""Operator settings: one pydantic-settings class, read from `RLOPS_*` variables.

Settings are built once by the entry point (`rlops operator`, `rlops render`) and
passed down; nothing reads the environment behind a caller's back.
"""

from __future__ import annotations

import re
import secrets
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rlops.api.annotations import HISTORY_POINTS

# KubeRay v1.7 refuses `authOptions.mode: token` with an older `rayVersion` (validation.go).
MIN_TOKEN_AUTH_RAY = (2, 52, 0)


class Settings(BaseSettings):
    """What the operator and the KubeRay builder need to know about their installation."""

    model_config = SettingsConfigDict(env_prefix="RLOPS_", extra="ignore")

    image: str = Field(
        default="ghcr.io/rlops/rlops:0.1.0",
        description="Image of the Ray pods when an RLExperiment names none.",
    )
    ray_version: str = Field(
        default="2.60.0",
        pattern=r"^\d+\.\d+\.\d+",
        description=(
            "Ray version of the image; 2.52.0 or later (KubeRay refuses token "
            "authentication, `authOptions.mode: token`, with an older Ray)."
        ),
    )
    python: str = Field(default="python", description="Interpreter of the image that runs rlops.")
    storage_path: str = Field(
        default="/data/rlops",
        description="Run directories go to `<storagePath>/<namespace>/<name>` unless a spec says.",
    )
    storage_claim: str | None = Field(
        default=None,
        description=(
            "A PersistentVolumeClaim (ReadWriteMany) mounted at storagePath in every Ray pod, "
            "so that run directories there reach the pods; none: the image provides the path."
        ),
    )
    storage_secret: str | None = Field(
        default=None,
        description=(
            "A Secret, in each experiment's namespace, whose keys "
            "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_DEFAULT_REGION "
            "and AWS_ENDPOINT_URL (each optional) become variables of the Ray pods of "
            "experiments stored in an object store (`s3://`); none: the pods' own credentials."
        ),
    )
    submission_mode: Literal["K8sJobMode", "HTTPMode", "SidecarMode"] = Field(
        default="K8sJobMode",
        description=(
            "How KubeRay submits the training job: K8sJobMode (a submitter pod rendered "
            "restricted), HTTPMode (KubeRay's operator posts it to the dashboard) or "
            "SidecarMode (KubeRay adds a submitter container without a securityContext to "
            "the head pod, which a namespace enforcing Pod Security `restricted` refuses)."
        ),
    )
    deadline_margin_seconds: int = Field(
        default=600,
        description="Added to `stop.wallTimeSeconds` for the RayJob's activeDeadlineSeconds.",
    )
    progress_url: str = Field(
        default="http://rlops-operator.rlops-system.svc:8081",
        description="Base URL at which training pods reach the operator's progress endpoint.",
    )
    progress_port: int = Field(default=8081, description="Port of the progress endpoint.")
    metrics_port: int = Field(default=8080, description="Port of /metrics, /healthz, /readyz.")
    host: str = Field(default="0.0.0.0", description="Address both servers listen on.")
    webhook_port: int = Field(
        default=0,
        description="Port of the validating admission webhook (HTTPS); 0: no webhook.",
    )
    webhook_host: str = Field(
        default="rlops.rlops-system.svc",
        description="DNS name the API server calls the webhook by (`<service>.<namespace>.svc`).",
    )
    webhook_cert_dir: str | None = Field(
        default=None,
        description=(
            "Directory with the webhook's `tls.crt` and `tls.key` (e.g. cert-manager's Secret); "
            "none: a self-signed certificate is made at start-up."
        ),
    )
    webhook_configuration: str | None = Field(
        default=None,
        description=(
            "ValidatingWebhookConfiguration whose caBundle the operator fills in with its "
            "self-signed certificate (not with webhookCertDir)."
        ),
    )
    secret: SecretStr = Field(
        default_factory=lambda: SecretStr(secrets.token_hex(32)),
        description=(
            "Key of the per-experiment progress tokens. Set it (from a Secret) so that "
            "tokens survive operator restarts and agree between replicas."
        ),
    )
    secret_name: str | None = Field(
        default=None,
        description=(
            "A Secret in the operator's namespace holding the key (under secretKey); "
            "the operator creates it once with a random key when missing. RLOPS_SECRET wins."
        ),
    )
    secret_key: str = Field(default="secret", description="The key's entry in secretName.")
    namespace: str = Field(
        default="rlops-system", description="The operator's own namespace (of secretName)."
    )
    status_flush_seconds: float = Field(
        default=5.0,
        description="Progress is written to an object's status at most this often; a status "
        "change that can wait (message, conditions, progress, result) is held this long at most.",
    )
    resync_seconds: float = Field(
        default=30.0, description="Sweeps are re-planned at least this often."
    )
    peering_lifetime_seconds: int = Field(
        default=60, description="A replica silent this long is presumed dead by its peers."
    )
    history_points: int = Field(
        default=HISTORY_POINTS,
        description="Progress points kept per sweep trial for early stopping.",
    )
    finished_series_seconds: float = Field(
        default=3600.0,
        description="Metrics series of a finished experiment are dropped this long after it ended.",
    )

    @field_validator("ray_version")
    @classmethod
    def _token_auth_ray(cls, value: str) -> str:
        found = re.match(r"(\d+)\.(\d+)\.(\d+)", value)
        if found and tuple(int(part) for part in found.groups()) < MIN_TOKEN_AUTH_RAY:
            raise ValueError(
                f"{value}: RayJobs ask KubeRay for token authentication (authOptions.mode: "
                "token), which needs Ray 2.52.0 or later"
            )
        return value
