"""One start-up line that says what a run trains on: copies, training areas and agents per behavior.

Environments may tell their layout through two optional attributes: `num_copies` (copies stepped in
lockstep, e.g. `EnvPool`) and `num_areas` (training areas per copy, built-in environments). Agent
counts are those of the DecisionSteps after a reset.
"""

from __future__ import annotations

from fledge.envs.api import BaseEnv


def _agents(n: int) -> str:
    return f"{n} agent" if n == 1 else f"{n} agents"


def describe_layout(env: BaseEnv, env_name: str) -> str:
    """E.g. "Environment 3DBall: 4 areas x 12 agents = 48 agents (behavior 3DBall)"; the env must be reset."""
    counts = {name: len(env.get_steps(name)[0]) for name in env.behavior_specs}
    total = sum(counts.values())
    copies = int(getattr(env, "num_copies", 1) or 1)
    areas = getattr(env, "num_areas", None)
    if len(counts) == 1:
        behaviors = f"behavior {next(iter(counts))}"
    else:
        behaviors = "behaviors " + ", ".join(f"{name}: {_agents(n)}" for name, n in counts.items())
    factors = [f"{copies} copies"] if copies > 1 else []
    if areas is not None and total % (copies * int(areas)) == 0:
        factors.append(f"{areas} area" if areas == 1 else f"{areas} areas")
        per_area = total // (copies * int(areas))
        return f"Environment {env_name}: {' x '.join(factors)} x {_agents(per_area)} = {_agents(total)} ({behaviors})"
    prefix = f"{factors[0]}, " if factors else ""
    return f"Environment {env_name}: {prefix}{_agents(total)} ({behaviors})"
