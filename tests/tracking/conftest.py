"""Fixtures of the tracking tests: a real MLflow server on loopback."""

from tests.tracking.mlflow_server import mlflow_server

__all__ = ["mlflow_server"]
