"""rlops: declarative reinforcement-learning experiments and sweeps.

Kubernetes (KubeRay), SLURM or this machine; one image, one status shape, one set of
Prometheus metrics. The resource models are in `rlops.api`. Training programs of their
own (command trainers) may use `rlops.report` and its neighbours (standard library only).
"""

from rlops.program import checkpoint_dir, report, resume_checkpoint, trainer_config

__version__ = "0.1.0"
__all__ = ["__version__", "checkpoint_dir", "report", "resume_checkpoint", "trainer_config"]
