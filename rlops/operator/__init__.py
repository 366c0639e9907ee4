"""The Kubernetes operator (kopf): RLExperiments become RayJobs, Sweeps become trials.

It lives inside the `rlops` package because a top-level `operator` package would
shadow Python's own `operator` module. `rlops.operator.main.run_operator` runs it;
the reconcilers (`experiments`, `sweeps`) are pure and import neither kopf nor a client.
"""
