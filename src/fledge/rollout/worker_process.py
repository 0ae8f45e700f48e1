"""An environment worker process: `python -m fledge.rollout.worker_process '<json>'`.

The JSON argument names the environment, its seed and keyword arguments (and `step_delay_s`, seconds of
sleep added to every step: a slow environment for benchmarks, 0 by default). The worker talks to its
parent over its stdin/stdout with length-prefixed messages (wire.py); anything the environment
prints goes to stderr. Nothing is pickled in either direction.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time
import traceback
from typing import IO, Any, BinaryIO

import numpy as np

_FRAME = struct.Struct("<Q")


def read_exact(stream: IO[bytes], n: int) -> bytes:
    chunks = []
    while n:
        chunk = stream.read(n)
        if not chunk:
            raise EOFError("the other side closed the pipe")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(stream: IO[bytes]) -> bytes:
    (size,) = _FRAME.unpack(read_exact(stream, _FRAME.size))
    return read_exact(stream, size)


def write_frame(stream: IO[bytes], data: bytes) -> None:
    stream.write(_FRAME.pack(len(data)))
    stream.write(data)
    stream.flush()


def check_fixed_behaviors(names: list[str], now: list[str]) -> None:
    """Copies of an environment in a pool keep the behaviors they started with; a clear error otherwise."""
    if now == names:
        return
    from fledge.errors import EnvironmentFault

    added = ", ".join(f"'{n}'" for n in now if n not in names) or "none"
    raise EnvironmentFault(
        f"An environment copy announced new behaviors after its start (new: {added}). Runs with several copies "
        "(--num-envs above 1) need every behavior from the first step: run with --num-envs 1, or have every "
        "behavior's agents in the scene when it starts."
    )


def serve(inp: BinaryIO, out: BinaryIO, config: dict[str, Any]) -> None:
    from fledge.envs import registry
    from fledge.envs.api import ActionTuple
    from fledge.rollout import wire

    def send_steps(env: Any, names: list[str]) -> None:
        arrays: dict[str, np.ndarray] = {}
        for i, name in enumerate(names):
            arrays.update(wire.steps_to_arrays(i, *env.get_steps(name)))
        stats = [[k, v, int(m)] for k, values in env.get_stats().items() for v, m in values]
        write_frame(out, wire.encode("steps", {"behaviors": names, "stats": stats}, arrays))

    env = registry.make(config["env_name"], seed=int(config["seed"]), **config.get("env_kwargs", {}))
    delay = float(config.get("step_delay_s", 0.0))
    if config.get("environment_parameters"):
        env.set_environment_parameters(config["environment_parameters"])  # before the first episode
    env.reset()
    names = list(env.behavior_specs)
    areas = getattr(env, "num_areas", None)
    known = env.environment_parameter_names()
    header = {
        "specs": wire.specs_to_json(dict(env.behavior_specs)),
        "num_areas": areas,
        "parameters": None if known is None else sorted(known),
    }
    write_frame(out, wire.encode("specs", header))
    send_steps(env, names)
    while True:
        command, values, arrays = wire.decode(read_frame(inp))
        if command == "close":
            env.close()
            write_frame(out, wire.encode("closed"))
            return
        if command == "parameters":  # new lesson values: applied at the next episode starts, answered with ok
            env.set_environment_parameters(values["parameters"])
            write_frame(out, wire.encode("ok"))
            continue
        if command == "reset":
            env.reset()
        elif command == "step":
            for i, name in enumerate(values["behaviors"]):
                if f"{i}.c" in arrays:
                    env.set_actions(name, ActionTuple(arrays[f"{i}.c"], arrays[f"{i}.d"]))
            env.step()
            if delay:
                time.sleep(delay)
        else:
            raise wire.ProtocolError(f"unknown command '{command}'")
        check_fixed_behaviors(names, list(env.behavior_specs))
        send_steps(env, names)


def main() -> None:
    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # the environment's prints go to stderr
    protocol_in = sys.stdin.buffer
    from fledge.rollout import wire

    try:
        serve(protocol_in, protocol_out, json.loads(sys.argv[1]))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return
    except BaseException:
        try:
            write_frame(protocol_out, wire.encode("error", {"text": traceback.format_exc(limit=8)}))
        except OSError:
            pass
        sys.exit(1)


if __name__ == "__main__":
    main()
