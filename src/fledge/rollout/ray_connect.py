"""Reaching Ray for the environment workers: import it (with the install hint when it is missing), start a
local instance or join a cluster (checked to answer before anything else starts), and check that the cluster
has the CPUs the actors ask for."""

from __future__ import annotations

import logging
import math
import os
import socket
from typing import TYPE_CHECKING, Any

from fledge.errors import ConfigError, EnvironmentFault

if TYPE_CHECKING:
    from types import ModuleType


log = logging.getLogger("fledge")

INSTALL_HINT = "pip install 'fledge[ray]'"
CONNECT_TIMEOUT_S = 10.0


def require_ray() -> ModuleType:
    """The ray module, or a ConfigError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            f"Ray workers (env_settings.workers: ray, --workers ray, fledge sweep) need Ray, which is not "
            f"installed: {INSTALL_HINT}"
        ) from None
    return ray


# ----------------------------------------------------------------------------------------------
# Connecting
# ----------------------------------------------------------------------------------------------


class RayConnection:
    """The run's link to Ray: `close` shuts down what `connect` started (nothing when Ray was already up)."""

    def __init__(self, *, ray: ModuleType, owned: bool, address: str | None) -> None:
        self.ray = ray
        self.owned = owned
        self.address = address

    def close(self) -> None:
        if self.owned and self.ray.is_initialized():
            self.ray.shutdown()
        self.owned = False


def _check_reachable(address: str) -> None:
    """A plain "host:port" address must accept a TCP connection, checked in seconds (Ray would wait longer)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return  # "auto", "ray://..." and the like: ray.init says what is wrong
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise EnvironmentFault(
            f"env_settings.ray_address: the Ray cluster at {address} cannot be reached ({exc}). Start its head "
            "node with 'ray start --head' and pass the address it prints (host:port of the GCS, port 6379 by "
            "default), use --ray-address auto on a node of the cluster, or leave ray_address unset to start a "
            "local Ray instance."
        ) from None


def connect(address: str | None, *, cpus_needed: float) -> RayConnection:
    """Join Ray: a running cluster at `address`, or a new local instance (address None) big enough for the
    actors; the session of a caller that already started Ray is used as it is. Errors before anything starts."""
    ray = require_ray()
    if ray.is_initialized():
        return RayConnection(ray=ray, owned=False, address=address)
    common: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if address is None:
        # logical CPUs only: actors that mostly wait for a slow simulation may share cores
        cpus = max(os.cpu_count() or 1, math.ceil(cpus_needed))
        ray.init(num_cpus=cpus, **common)
        log.info("Started a local Ray instance with %d CPUs", cpus)
    else:
        _check_reachable(address)
        try:
            ray.init(address=address, **common)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            raise EnvironmentFault(
                f"env_settings.ray_address: cannot join the Ray cluster at '{address}': {exc}. Start one with "
                "'ray start --head' (and 'ray start --address=HEAD:6379' on the other nodes), or leave ray_address "
                "unset to start a local Ray instance."
            ) from None
        log.info("Joined the Ray cluster at %s", address)
    connection = RayConnection(ray=ray, owned=True, address=address)
    try:
        check_capacity(ray, cpus_needed)
    except Exception:
        connection.close()
        raise
    return connection


def check_capacity(ray: ModuleType, cpus_needed: float) -> None:
    """Actors that the cluster cannot place would wait forever: say so before the run starts."""
    total = float(ray.cluster_resources().get("CPU", 0.0))
    if cpus_needed > total + 1e-9:
        raise ConfigError(
            f"env_settings.workers: ray needs {cpus_needed:g} CPUs for its environment actors (num_envs x "
            f"ray_num_cpus), and the Ray cluster has {total:g}. Lower env_settings.ray_num_cpus (--ray-num-cpus, "
            "e.g. 0.5), use fewer copies, or add nodes."
        )
