"""Validation at apply time, and again before the operator creates anything.

The validator of `rlops validate` (`validate_manifest`) runs in two places:

- behind a validating admission webhook that kopf serves (`@kopf.on.validate`, one
  endpoint per kind at `/validate-rlexperiments` and `/validate-sweeps`), so that
  `kubectl apply` of a bad manifest is refused with the validator's messages;
- in the controller, before an experiment gets a RayJob or a Sweep gets trials: an
  invalid object (applied while the webhook was down, or before it was installed)
  becomes Failed (condition Stalled) with the field paths in its message.

The webhook's certificate comes from `webhookCertDir` (`tls.crt`, `tls.key`; e.g. a
cert-manager Secret, whose CA cert-manager injects into the webhook configuration) or
is made at start-up, self-signed for `webhookHost`; the operator then writes that
certificate as the caBundle of `webhookConfiguration` and keeps it there.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import logging
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import kopf
import kubernetes.client
from kubernetes.client.exceptions import ApiException

from rlops.api import BackendRef, Phase, RLExperimentStatus, SweepPhase, SweepStatus
from rlops.api.settings import Settings
from rlops.api.validation import FieldError, validate_manifest
from rlops.lifecycle.conditions import experiment_conditions
from rlops.operator.kube import RLEXPERIMENTS, Kind

if TYPE_CHECKING:
    from rlops.operator.controller import Controller

log = logging.getLogger(__name__)

GROUP, VERSION = "rlops.dev", "v1alpha1"
# Handler id (= the webhook's URL path) of each kind.
WEBHOOKS = {"rlexperiments": "validate-rlexperiments", "sweeps": "validate-sweeps"}
CA_REFRESH_SECONDS = 60.0
_KEPT = (Phase.SUCCEEDED.value, Phase.STOPPED.value)  # outcomes a later edit does not rewrite

_cache: OrderedDict[tuple[str, int, str], list[FieldError]] = OrderedDict()


def manifest_errors(body: Any) -> list[FieldError]:
    """The validator's errors of one object, remembered per uid and generation."""
    meta = body.get("metadata") or {}
    key = (str(meta.get("uid") or meta.get("name")), int(meta.get("generation") or 0),
           str(body.get("kind")))  # fmt: skip
    if key not in _cache:
        _cache[key] = validate_manifest({k: v for k, v in dict(body).items() if k != "status"})
        while len(_cache) > 4096:
            _cache.popitem(last=False)
    _cache.move_to_end(key)
    return _cache[key]


def denial(errors: list[FieldError]) -> str:
    """One message with every error and its field path."""
    noun = "error" if len(errors) == 1 else "errors"
    return f"{len(errors)} {noun}: " + "; ".join(str(e) for e in errors)


def refused_status(kind: Kind, body: Any, errors: list[FieldError], now: str) -> dict[str, Any]:
    """The Failed status (Stalled) of an invalid object."""
    message = "invalid: " + denial(errors)
    generation = (body.get("metadata") or {}).get("generation")
    conditions = experiment_conditions(Phase.FAILED, message, generation)
    for condition in conditions:
        condition.last_transition_time = now
    common: dict[str, Any] = {
        "message": message,
        "completed_at": now,
        "observed_generation": generation,
        "conditions": conditions,
    }
    if kind == RLEXPERIMENTS:
        attempts = (body.get("status") or {}).get("attempts")
        attempts = attempts if isinstance(attempts, int) else 0
        return RLExperimentStatus(phase=Phase.FAILED, attempts=attempts, **common).dump()
    return SweepStatus(phase=SweepPhase.FAILED, **common).dump()


async def refuse_invalid(controller: Controller, kind: Kind, body: Any) -> bool:
    """Fail an invalid object instead of acting on it; True when it is invalid."""
    errors = manifest_errors(body)
    if not errors:
        return False
    status = body.get("status") or {}
    if status.get("phase") in _KEPT or str(status.get("message", "")).startswith("invalid: "):
        return True  # already said, or an outcome from before the edit
    now = controller.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
    await controller.write_status(kind, body, refused_status(kind, body, errors, now))
    meta = body["metadata"]
    if kind == RLEXPERIMENTS and controller.indexes.rayjob((meta["namespace"], meta["name"])):
        ref = BackendRef(kind="RayJob", name=meta["name"], namespace=meta["namespace"])
        await controller.call(controller.backend.cancel, None, ref)
    return True


# -- the webhook ----------------------------------------------------------------------


def check(**kwargs: Any) -> None:
    """Refuse a create, or an update of the spec, that the validator rejects."""
    body: kopf.Body = kwargs["body"]
    old, operation = kwargs.get("old"), kwargs.get("operation")
    if operation == "UPDATE":
        if body.metadata.get("deletionTimestamp"):
            return  # removing finalizers of an object on its way out
        if old is not None and (old.get("spec") == body.get("spec")):
            return  # metadata only (annotations such as rlops.dev/stop, finalizers)
    errors = validate_manifest({k: v for k, v in dict(body).items() if k != "status"})
    if errors:
        raise kopf.AdmissionError(denial(errors), code=422)


def self_signed(host: str, directory: Path) -> tuple[Path, Path]:
    """A certificate and key for `host` (and localhost, its SANs), signed by themselves."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rlops-webhook")])  # <= 64 chars
    now = datetime.datetime.now(datetime.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName(host), x509.DNSName("localhost")]
    sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def publish_ca_bundle(api: kubernetes.client.ApiClient, name: str, cadata: bytes) -> bool:
    """Write `cadata` as the caBundle of every webhook of configuration `name`;
    True when something changed."""
    admission = kubernetes.client.AdmissionregistrationV1Api(api)
    config = admission.read_validating_webhook_configuration(name)
    bundle = base64.b64encode(cadata).decode()
    changed = False
    for webhook in config.webhooks or []:
        if webhook.client_config.ca_bundle != bundle:
            webhook.client_config.ca_bundle = bundle
            changed = True
    if changed:
        admission.replace_validating_webhook_configuration(name, config)
    return changed


async def keep_ca_bundle(api: kubernetes.client.ApiClient, name: str, cadata: bytes) -> None:
    """Publish the CA now and again whenever an upgrade or a GitOps sync resets it."""
    while True:
        try:
            if await asyncio.to_thread(publish_ca_bundle, api, name, cadata):
                log.info("wrote the webhook CA into ValidatingWebhookConfiguration %s", name)
        except ApiException as exc:
            log.warning("cannot write the webhook CA into %s: %s", name, exc.reason)
        await asyncio.sleep(CA_REFRESH_SECONDS)


def register_admission(registry: kopf.OperatorRegistry, controller: Controller) -> None:
    """Serve the validating webhook when `webhookPort` is set."""
    settings: Settings = controller.settings
    if not settings.webhook_port:
        return
    for plural, handler_id in WEBHOOKS.items():
        kopf.on.validate(
            GROUP,
            VERSION,
            plural,
            id=handler_id,
            operations=["CREATE", "UPDATE"],
            registry=registry,
        )(check)
    tasks: list[asyncio.Task[None]] = []

    @kopf.on.startup(registry=registry)
    async def serve_webhook(settings: kopf.OperatorSettings, **_: Any) -> None:
        ours = controller.settings
        if ours.webhook_cert_dir:
            certfile = Path(ours.webhook_cert_dir) / "tls.crt"
            pkeyfile = Path(ours.webhook_cert_dir) / "tls.key"
        else:
            directory = Path(tempfile.mkdtemp(prefix="rlops-webhook-"))
            certfile, pkeyfile = await asyncio.to_thread(self_signed, ours.webhook_host, directory)
            if ours.webhook_configuration:
                api = controller.kube.custom.api_client
                task = keep_ca_bundle(api, ours.webhook_configuration, certfile.read_bytes())
                tasks.append(asyncio.get_running_loop().create_task(task))
        settings.admission.server = kopf.WebhookServer(
            addr=ours.host,
            port=ours.webhook_port,
            host=ours.webhook_host,
            certfile=str(certfile),
            pkeyfile=str(pkeyfile),
        )

    @kopf.on.cleanup(registry=registry)
    async def stop_publishing(**_: Any) -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
