"""Where an attempt ran, as Ray itself placed it: the runtime block of result.json."""

from __future__ import annotations

import logging
import socket
import sys
from typing import Any

from rlops.api.runinfo import RuntimeInfo
from rlops.version import __version__

log = logging.getLogger("rlops.runtime")


def runtime_info(
    ray_nodes: int | None, ray_head: str | None = None, env_runner_nodes: list[str] | None = None
) -> RuntimeInfo:
    return RuntimeInfo(
        hostname=socket.gethostname(),
        python=sys.executable,
        rlops_version=__version__,
        ray_nodes=ray_nodes,
        ray_head=ray_head,
        env_runner_nodes=env_runner_nodes,
    )


def env_runner_nodes(algo: Any) -> list[str] | None:
    """The node address of each remote env runner, from Ray's node table; None without any."""
    import ray

    group = getattr(algo, "env_runner_group", None)
    if group is None or group.num_remote_env_runners() == 0:
        return None
    try:
        node_ids: list[str] = group.foreach_env_runner(
            lambda _runner: ray.get_runtime_context().get_node_id(), local_env_runner=False
        )
        nodes = ray.nodes()  # type: ignore[no-untyped-call]
    except Exception:  # placement is a record, never a reason to fail the attempt
        log.exception("could not read where the env runners run")
        return None
    address = {n["NodeID"]: n["NodeManagerAddress"] for n in nodes}
    return [address.get(node_id, node_id) for node_id in node_ids]
