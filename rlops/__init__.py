"""rlops: declarative reinforcement-learning experiments and sweeps.

Kubernetes (KubeRay), SLURM or this machine; one image, one status shape, one set of
Prometheus metrics. The resource models are in `rlops.api`.
"""

__version__ = "0.1.0"
