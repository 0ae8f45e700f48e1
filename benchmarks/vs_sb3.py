"""fledge vs Stable-Baselines3: wall-clock time to a return threshold, same env, hyperparameters and seeds.

Tasks (both libraries on 1 torch thread, same number of parallel envs, runs interleaved per seed:
fledge seed s, SB3 seed s, fledge seed s+1, ...):

  ppo      gym CartPole-v1, fledge's shipped config (8 envs, one SyncVectorEnv): seconds until the
           mean return of the last 20 finished episodes first reaches 475.
  sac      gym Pendulum-v1, configs/sac/Pendulum-v1.yaml (1 env): seconds until the mean return of
           the last 10 finished episodes first reaches -200.
  scaling  fledge PPO CartPole env steps/s for num_envs 1, 2, 4, 8 (in-process) and 2 worker processes.

How it is measured (the same clock for both libraries, no imports and no set-up in the figures):
- t0 = the first environment step of training: for fledge the first `get_steps` of the training
  loop (the env, trainer and run folder already exist), for SB3 `on_training_start` (env already reset).
- Each finished episode is timestamped right after the env step that ended it: for fledge by a
  transparent wrapper around the run's environment (it sums the rewards of the DecisionSteps and
  TerminalSteps, the same sums the trainer reports; they are checked against RunResult's
  episode_returns), for SB3 by a callback reading infos["episode"] (Monitor). When the running mean
  first reaches the threshold, time and env steps (transitions summed over all envs) are recorded and
  training stops (fledge: through its own SIGINT handling, "finish the step and save"; SB3: the
  callback returns False). The time to threshold therefore includes every update done before it.
- env steps/s = env steps at the threshold / seconds to the threshold (whole training loop).
- "where the time goes": fledge's timers (environment, inference, processing, trainer, updates) and,
  for SB3, rollout collection (env + inference + buffer) vs. `train()` (updates), from callbacks.
- The linear schedules use the config's max_steps for fledge and total_timesteps = max_steps for SB3,
  so both decay at the same rate.

    .venv/bin/python benchmarks/vs_sb3.py                 # full run (3 seeds, ~5 min on 2 cores)
    .venv/bin/python benchmarks/vs_sb3.py --quick         # smoke run (1 seed, shorter budgets, ~1.5 min)
    .venv/bin/python benchmarks/vs_sb3.py --tasks ppo --seeds 5

Needs `pip install "stable-baselines3>=2.3,<3"` (the `bench` extra) and gymnasium.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import statistics
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fledge import api
from fledge.config import build_run_options, load_config_file
from fledge.configs import CONFIG_DIR, shipped_config
from fledge.envs.api import ActionTuple, BaseEnv, BehaviorSpec, DecisionSteps, TerminalSteps

PPO_ENV, PPO_WINDOW, PPO_THRESHOLD = "CartPole-v1", 20, 475.0
SAC_ENV, SAC_WINDOW, SAC_THRESHOLD = "Pendulum-v1", 10, -200.0
SAC_CONFIG = CONFIG_DIR / "sac" / "Pendulum-v1.yaml"
HUGE = 1e10  # fledge does not clip gradients: SB3's max_grad_norm is set out of reach


# ----------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One training run of one library."""

    library: str
    seed: int
    reached: bool = False
    seconds: float = float("nan")  # t0 -> threshold (or -> end of training when not reached)
    steps: int = 0  # env steps at the threshold (or at the end)
    train_seconds: float = float("nan")  # t0 -> last env step
    train_steps: int = 0
    setup_seconds: float = float("nan")  # library call -> t0 (model/trainer/env construction)
    final_mean: float = float("nan")  # running mean at the end
    episodes: int = 0
    shares: dict[str, float] = field(default_factory=dict)  # where the time went (fractions)
    error: str = ""

    @property
    def rate(self) -> float:
        return self.steps / self.seconds if self.seconds and self.seconds == self.seconds and self.seconds > 0 else 0.0


def med_range(values: list[float], fmt: str = "{:.1f}") -> str:
    vals = [v for v in values if v == v]
    if not vals:
        return "-"
    if len(vals) == 1:
        return fmt.format(vals[0])
    return f"{fmt.format(statistics.median(vals))} ({fmt.format(min(vals))}-{fmt.format(max(vals))})"


# ----------------------------------------------------------------------------------------------
# fledge: a transparent environment wrapper that timestamps episodes and can stop the run
# ----------------------------------------------------------------------------------------------


class EpisodeClock(BaseEnv):
    """Wraps the run's environment; times every finished episode; optionally stops training.

    Stopping raises SIGINT in the main thread: fledge's run loop then finishes the current step and
    returns normally (RunResult.interrupted is True). Nothing else of the environment changes.
    """

    def __init__(
        self,
        inner: BaseEnv,
        *,
        window: int = 20,
        threshold: float | None = None,
        stop_at_threshold: bool = True,
        stop_after_steps: int | None = None,
    ) -> None:
        self.inner = inner
        self.window = window
        self.threshold = threshold
        self.stop_at_threshold = stop_at_threshold
        self.stop_after_steps = stop_after_steps
        self.t0: float | None = None
        self.t_last = 0.0
        self.steps = 0
        self.returns: list[float] = []
        self.crossed: tuple[float, int] | None = None  # (seconds since t0, env steps)
        self._acc: dict[str, np.ndarray] = {}
        self._slot: dict[str, dict[int, int]] = {}
        self._acting: dict[str, int] = {}
        self._fresh: dict[str, bool] = {}
        self._stop_sent = False

    # pass-through of optional hooks (take_dropped_agents, get_stats, random_state, ...)
    def __getattr__(self, name: str) -> Any:
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def behavior_specs(self) -> Mapping[str, BehaviorSpec]:
        return self.inner.behavior_specs

    def reset(self) -> None:
        self.inner.reset()
        self._fresh = dict.fromkeys(self.inner.behavior_specs, True)

    def step(self) -> None:
        self.inner.step()
        now = time.perf_counter()
        self.t_last = now
        self.steps += sum(self._acting.values())
        self._acting = {}
        self._fresh = dict.fromkeys(self.inner.behavior_specs, True)
        if self.stop_after_steps is not None and self.steps >= self.stop_after_steps:
            self._stop()

    def get_steps(self, behavior_name: str) -> tuple[DecisionSteps, TerminalSteps]:
        if self.t0 is None:
            self.t0 = time.perf_counter()
        decision, terminal = self.inner.get_steps(behavior_name)
        if self._fresh.get(behavior_name, True):
            self._fresh[behavior_name] = False
            self._count(behavior_name, decision, terminal)
        self._acting[behavior_name] = len(decision)
        return decision, terminal

    def _slots(self, name: str, ids: np.ndarray) -> np.ndarray:
        """Rows of the per-agent return accumulator for these agent ids (ids may be large, e.g. worker pools)."""
        slot = self._slot.setdefault(name, {})
        rows = np.fromiter((slot.setdefault(i, len(slot)) for i in ids.tolist()), dtype=np.int64, count=len(ids))
        acc = self._acc.get(name)
        if acc is None or len(acc) < len(slot):
            grown = np.zeros(max(2 * len(slot), 16), dtype=np.float64)
            if acc is not None:
                grown[: len(acc)] = acc
            self._acc[name] = grown
        return rows

    def _count(self, name: str, decision: DecisionSteps, terminal: TerminalSteps) -> None:
        if len(terminal):
            rows = self._slots(name, np.asarray(terminal.agent_id))
            acc = self._acc[name]
            finished = acc[rows] + np.asarray(terminal.reward, dtype=np.float64)
            acc[rows] = 0.0
            now = time.perf_counter() - (self.t0 or 0.0)
            for ret in finished.tolist():
                self.returns.append(ret)
                if self.crossed is None and self.threshold is not None and len(self.returns) >= self.window:
                    if float(np.mean(self.returns[-self.window :])) >= self.threshold:
                        self.crossed = (now, self.steps)
                        if self.stop_at_threshold:
                            self._stop()
        if len(decision):
            rows = self._slots(name, np.asarray(decision.agent_id))
            self._acc[name][rows] += np.asarray(decision.reward, dtype=np.float64)

    def _stop(self) -> None:
        if not self._stop_sent and threading.current_thread() is threading.main_thread():
            self._stop_sent = True
            signal.raise_signal(signal.SIGINT)

    def set_actions(self, behavior_name: str, action: ActionTuple) -> None:
        self.inner.set_actions(behavior_name, action)

    def set_action_for_agent(self, behavior_name: str, agent_id: int, action: ActionTuple) -> None:
        self.inner.set_action_for_agent(behavior_name, agent_id, action)

    def close(self) -> None:
        self.inner.close()

    def seed(self, seed: int) -> None:
        self.inner.seed(seed)


def fledge_parts(timers: dict[str, Any]) -> dict[str, float]:
    """Seconds in env stepping, inference, processing (without inference), trainer (without update), update."""
    ch = timers.get("children", {})
    env = ch.get("env_step", {}).get("total", 0.0)
    proc = ch.get("process_steps", {"total": 0.0})
    act = proc.get("children", {}).get("policy_act", {}).get("total", 0.0)
    obs = ch.get("trainer_observe", {"total": 0.0})
    upd = obs.get("children", {}).get("update_policy", {}).get("total", 0.0)
    return {
        "environment": env,
        "inference": act,
        "processing": proc["total"] - act,
        "trainer": obs["total"] - upd,
        "updates": upd,
    }


def run_fledge(
    raw: dict[str, Any],
    seed: int,
    results: Path,
    *,
    window: int,
    threshold: float | None,
    stop_after_steps: int | None = None,
) -> Outcome:
    behavior = next(iter(raw["behaviors"]))
    raw = json.loads(json.dumps(raw))
    raw["checkpoint_settings"] = {"run_id": f"fledge-{behavior}-{seed}", "results_dir": str(results), "force": True}
    raw.setdefault("env_settings", {})["seed"] = seed
    out = Outcome("fledge", seed)
    t_call = time.perf_counter()
    options = build_run_options(raw)
    env = EpisodeClock(
        api.make_environment(options, seed), window=window, threshold=threshold, stop_after_steps=stop_after_steps
    )
    try:
        result = api.run(options, env=env, torch_threads=1)
    finally:
        env.close()
    got = result.behaviors[behavior].episode_returns
    n = min(len(got), len(env.returns))
    if n and not np.allclose(got[-n:], env.returns[-n:], rtol=1e-4, atol=1e-3):
        print(f"  warning: episode returns seen by the wrapper differ from fledge's ({behavior}, seed {seed})")
    out.setup_seconds = (env.t0 or t_call) - t_call
    out.train_seconds = env.t_last - (env.t0 or env.t_last)
    out.train_steps = env.steps
    out.episodes = len(env.returns)
    out.final_mean = float(np.mean(got[-window:])) if got else float("nan")
    if env.crossed is not None:
        out.reached, (out.seconds, out.steps) = True, env.crossed
    else:
        out.seconds, out.steps = out.train_seconds, out.train_steps
    split = fledge_parts(result.timers)
    loop = sum(split.values())
    out.shares = {k: v / loop for k, v in split.items()} if loop > 0 else {}
    return out


# ----------------------------------------------------------------------------------------------
# Stable-Baselines3
# ----------------------------------------------------------------------------------------------


def linear(initial: float, floor: float) -> Callable[[float], float]:
    """ML-Agents' linear schedule in SB3's terms (progress_remaining goes 1 -> 0 over total_timesteps)."""
    return lambda progress_remaining: floor + (initial - floor) * max(0.0, progress_remaining)


def make_threshold_callback(window: int, threshold: float | None, stop_after_steps: int | None = None) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback

    class ThresholdCallback(BaseCallback):
        def __init__(self) -> None:
            super().__init__(verbose=0)
            self.t0 = 0.0
            self.t_last = 0.0
            self.returns: list[float] = []
            self.crossed: tuple[float, int] | None = None
            self.collect = 0.0
            self.train = 0.0
            self._mark = 0.0

        def _on_training_start(self) -> None:
            self.t0 = self._mark = time.perf_counter()

        def _on_rollout_start(self) -> None:
            now = time.perf_counter()
            self.train += now - self._mark
            self._mark = now

        def _on_rollout_end(self) -> None:
            now = time.perf_counter()
            self.collect += now - self._mark
            self._mark = now

        def _on_step(self) -> bool:
            self.t_last = time.perf_counter()
            for info in self.locals.get("infos", ()):
                ep = info.get("episode")
                if ep is None:
                    continue
                self.returns.append(float(ep["r"]))
                if self.crossed is None and threshold is not None and len(self.returns) >= window:
                    if float(np.mean(self.returns[-window:])) >= threshold:
                        self.crossed = (self.t_last - self.t0, int(self.num_timesteps))
            if self.crossed is not None:
                self.collect += self.t_last - self._mark
                return False
            if stop_after_steps is not None and self.num_timesteps >= stop_after_steps:
                self.collect += self.t_last - self._mark
                return False
            return True

    return ThresholdCallback()


def run_sb3(
    algo: str,
    env_id: str,
    n_envs: int,
    seed: int,
    kwargs: dict[str, Any],
    total_timesteps: int,
    *,
    window: int,
    threshold: float,
) -> Outcome:
    import stable_baselines3 as sb3
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv

    torch.set_num_threads(1)
    out = Outcome("SB3", seed)
    t_call = time.perf_counter()
    env = make_vec_env(env_id, n_envs=n_envs, seed=seed, vec_env_cls=DummyVecEnv)  # Monitor on every copy
    model = getattr(sb3, algo)("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **kwargs)
    cb = make_threshold_callback(window, threshold)
    try:
        model.learn(total_timesteps=total_timesteps, callback=cb)
    finally:
        env.close()
    out.setup_seconds = cb.t0 - t_call
    out.train_seconds = cb.t_last - cb.t0
    out.train_steps = int(model.num_timesteps)
    out.episodes = len(cb.returns)
    out.final_mean = float(np.mean(cb.returns[-window:])) if cb.returns else float("nan")
    if cb.crossed is not None:
        out.reached, (out.seconds, out.steps) = True, cb.crossed
    else:
        out.seconds, out.steps = out.train_seconds, out.train_steps
    total = cb.collect + cb.train
    if total > 0:
        out.shares = {"rollout collection (env+inference)": cb.collect / total, "train() (updates)": cb.train / total}
    return out


def sb3_ppo_kwargs(raw: dict[str, Any], n_envs: int) -> dict[str, Any]:
    """ML-Agents PPO hyperparameters -> SB3 PPO (spec 2.4, 8.3)."""
    from torch import nn

    b = next(iter(raw["behaviors"].values()))
    hp, net = b.get("hyperparameters", {}), b.get("network_settings", {})
    gamma = b.get("reward_signals", {}).get("extrinsic", {}).get("gamma", 0.99)
    lr, eps = float(hp.get("learning_rate", 3e-4)), float(hp.get("epsilon", 0.2))
    lin = hp.get("learning_rate_schedule", "linear") == "linear"
    eps_lin = hp.get("epsilon_schedule", hp.get("learning_rate_schedule", "linear")) == "linear"
    clip = linear(eps, 0.1) if eps_lin else eps
    units = [int(net.get("hidden_units", 128))] * int(net.get("num_layers", 2))
    if net.get("normalize", False):
        raise SystemExit("network_settings.normalize: true needs VecNormalize(norm_reward=False) on the SB3 side")
    return {
        "n_steps": int(hp.get("buffer_size", 10240)) // n_envs,
        "batch_size": int(hp.get("batch_size", 1024)),
        "n_epochs": int(hp.get("num_epoch", 3)),
        "gamma": float(gamma),
        "gae_lambda": float(hp.get("lambd", 0.95)),
        "ent_coef": float(hp.get("beta", 5e-3)),  # SB3 has no entropy schedule (beta is 0 for CartPole)
        "clip_range": clip,
        "clip_range_vf": clip,  # fledge clips the value like the policy, with the scheduled epsilon
        "vf_coef": 0.5,
        "max_grad_norm": HUGE,
        "normalize_advantage": True,
        "learning_rate": linear(lr, 1e-10) if lin else lr,
        "policy_kwargs": {"net_arch": {"pi": units, "vf": units}, "activation_fn": nn.SiLU},
    }


def sb3_sac_kwargs(raw: dict[str, Any]) -> dict[str, Any]:
    """ML-Agents SAC hyperparameters -> SB3 SAC (spec 2.4, 8.4)."""
    from torch import nn

    b = next(iter(raw["behaviors"].values()))
    hp, net = b.get("hyperparameters", {}), b.get("network_settings", {})
    gamma = b.get("reward_signals", {}).get("extrinsic", {}).get("gamma", 0.99)
    spu = float(hp.get("steps_per_update", 1.0))
    if spu >= 1:
        train_freq, gradient_steps = int(round(spu)), 1  # one update per steps_per_update env steps
    else:
        train_freq, gradient_steps = 1, int(round(1 / spu))
    lr = float(hp.get("learning_rate", 3e-4))
    if hp.get("learning_rate_schedule", "constant") == "linear":
        lr = linear(lr, 1e-10)  # type: ignore[assignment]
    units = [int(net.get("hidden_units", 128))] * int(net.get("num_layers", 2))
    return {
        "learning_rate": lr,
        "buffer_size": int(hp.get("buffer_size", 50000)),
        "batch_size": int(hp.get("batch_size", 128)),
        "learning_starts": max(int(hp.get("buffer_init_steps", 0)), int(hp.get("batch_size", 128))),
        "tau": float(hp.get("tau", 0.005)),
        "gamma": float(gamma),
        "train_freq": train_freq,
        "gradient_steps": gradient_steps,
        "ent_coef": f"auto_{float(hp.get('init_entcoef', 1.0))}",
        "policy_kwargs": {"net_arch": units, "activation_fn": nn.SiLU},
    }


# ----------------------------------------------------------------------------------------------
# Tasks
# ----------------------------------------------------------------------------------------------


def print_comparison(title: str, runs: list[tuple[Outcome, Outcome]], unit_note: str, notes: str = "") -> None:
    print(f"\n### {title}")
    print(unit_note)
    head = (
        f"{'seed':>4} | {'fledge s':>9} {'steps':>7} {'steps/s':>8} | {'SB3 s':>9} {'steps':>7} {'steps/s':>8} "
        f"| {'time ratio':>10} {'rate ratio':>10}"
    )
    print(head)
    print("-" * len(head))

    def cell(o: Outcome) -> str:
        if o.error:
            return f"{'failed':>9} {'-':>7} {'-':>8}"
        mark = "" if o.reached else ">"
        return f"{mark + format(o.seconds, '.1f'):>9} {o.steps:>7} {o.rate:>8.0f}"

    ratios, rate_ratios = [], []
    for f, s in runs:
        ok = f.reached and s.reached and not f.error and not s.error
        ratio = f.seconds / s.seconds if ok else float("nan")
        rr = f.rate / s.rate if (s.rate and not f.error) else float("nan")
        ratios.append(ratio)
        rate_ratios.append(rr)
        print(f"{f.seed:>4} | {cell(f)} | {cell(s)} | {ratio:>10.2f} {rr:>10.2f}")
    for lib, idx in (("fledge", 0), ("SB3", 1)):
        outs = [r[idx] for r in runs if not r[idx].error]
        reached = [o for o in outs if o.reached]
        print(
            f"  {lib:<6} reached {len(reached)}/{len(runs)}: seconds {med_range([o.seconds for o in reached])}, "
            f"env steps {med_range([float(o.steps) for o in reached], '{:.0f}')}, "
            f"env steps/s {med_range([o.rate for o in outs], '{:.0f}')}, "
            f"set-up s {med_range([o.setup_seconds for o in outs], '{:.2f}')}, "
            f"final mean {med_range([o.final_mean for o in outs])}"
        )
    print(
        f"  fledge/SB3 time-to-threshold ratio: {med_range(ratios, '{:.2f}')} (goal <= 0.5); "
        f"env steps/s ratio fledge/SB3: {med_range(rate_ratios, '{:.2f}')}"
    )
    for lib, idx in (("fledge", 0), ("SB3", 1)):
        shares = [r[idx].shares for r in runs if r[idx].shares]
        if shares:
            text = ", ".join(f"{k} {100 * statistics.median(s[k] for s in shares):.0f}%" for k in shares[0])
            print(f"  where the time goes, {lib} (median share of the training loop): {text}")
    for f, s in runs:
        for o in (f, s):
            if o.error:
                print(f"  {o.library} seed {o.seed} FAILED: {o.error}")
    if notes:
        print(f"  not identical on purpose / by design: {notes}")


def guarded(fn: Callable[[], Outcome], library: str, seed: int) -> Outcome:
    try:
        return fn()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return Outcome(library, seed, error=detail)


def task_ppo(seeds: list[int], results: Path, max_steps: int | None) -> None:
    raw = load_config_file(shipped_config(f"gym:{PPO_ENV}"))  # type: ignore[arg-type]
    b = raw["behaviors"][PPO_ENV]
    if max_steps:
        b["max_steps"] = max_steps
    budget = int(b["max_steps"])
    n_envs = int(raw["env_settings"]["num_envs"])
    kwargs = sb3_ppo_kwargs(raw, n_envs)
    runs = []
    for seed in seeds:
        f = guarded(lambda: run_fledge(raw, seed, results, window=PPO_WINDOW, threshold=PPO_THRESHOLD), "fledge", seed)
        print(
            f"  ppo fledge seed {seed}: {'reached' if f.reached else 'NOT reached'} in {f.seconds:.1f} s, "
            f"{f.steps} steps {f.error}",
            flush=True,
        )
        s = guarded(
            lambda: run_sb3("PPO", PPO_ENV, n_envs, seed, kwargs, budget, window=PPO_WINDOW, threshold=PPO_THRESHOLD),
            "SB3",
            seed,
        )
        print(
            f"  ppo SB3    seed {seed}: {'reached' if s.reached else 'NOT reached'} in {s.seconds:.1f} s, "
            f"{s.steps} steps {s.error}",
            flush=True,
        )
        runs.append((f, s))
    print_comparison(
        f"PPO {PPO_ENV}: seconds to mean return >= {PPO_THRESHOLD:g} over the last {PPO_WINDOW} episodes",
        runs,
        f"shipped config, {n_envs} envs (one SyncVectorEnv each side), budget {budget} env steps, "
        f"1 torch thread; '>' = threshold not reached within the budget (time/steps of the whole run)",
        "SB3 normalises advantages per minibatch (fledge per buffer), its clipped value loss uses the clipped "
        "error only (fledge the max of both), orthogonal init (fledge He-normal), Adam eps 1e-5; SB3 collects "
        "n_steps = buffer_size / n_envs per env and bootstraps there (fledge cuts at time_horizon).",
    )


def task_sac(seeds: list[int], results: Path, max_steps: int | None) -> None:
    if not SAC_CONFIG.is_file():
        print(f"\n### SAC {SAC_ENV}: SKIPPED, {SAC_CONFIG} does not exist")
        return
    raw = load_config_file(SAC_CONFIG)
    b = raw["behaviors"][SAC_ENV]
    if max_steps:
        b["max_steps"] = max_steps
    budget = int(b["max_steps"])
    kwargs = sb3_sac_kwargs(raw)
    runs = []
    for seed in seeds:
        f = guarded(lambda: run_fledge(raw, seed, results, window=SAC_WINDOW, threshold=SAC_THRESHOLD), "fledge", seed)
        print(
            f"  sac fledge seed {seed}: {'reached' if f.reached else 'NOT reached'} in {f.seconds:.1f} s, "
            f"{f.steps} steps, final mean {f.final_mean:.0f} {f.error}",
            flush=True,
        )
        s = guarded(
            lambda: run_sb3("SAC", SAC_ENV, 1, seed, kwargs, budget, window=SAC_WINDOW, threshold=SAC_THRESHOLD),
            "SB3",
            seed,
        )
        print(
            f"  sac SB3    seed {seed}: {'reached' if s.reached else 'NOT reached'} in {s.seconds:.1f} s, "
            f"{s.steps} steps, final mean {s.final_mean:.0f} {s.error}",
            flush=True,
        )
        runs.append((f, s))
    hp = b["hyperparameters"]
    print_comparison(
        f"SAC {SAC_ENV}: seconds to mean return >= {SAC_THRESHOLD:g} over the last {SAC_WINDOW} episodes",
        runs,
        f"configs/sac/{SAC_ENV}.yaml: 1 env, batch {hp.get('batch_size')}, lr {hp.get('learning_rate')}, "
        f"{b['network_settings'].get('hidden_units')}x{b['network_settings'].get('num_layers')}, "
        f"steps_per_update {hp.get('steps_per_update')} (SB3 train_freq {kwargs['train_freq']}, "
        f"gradient_steps {kwargs['gradient_steps']}), buffer_init_steps {hp.get('buffer_init_steps')} "
        f"(SB3 learning_starts {kwargs['learning_starts']}), budget {budget} env steps",
        "SB3's SAC uses twin target-Q networks (fledge ML-Agents' V-network SAC) and uniform random actions "
        "before learning_starts (fledge acts with its policy); SB3 updates after every env step, fledge runs "
        "the same number of updates in bursts when a trajectory (time_horizon or episode end) is processed.",
    )
    if any(f.error for f, _ in runs):
        print("  fledge SAC could not run; see the errors above.")
    elif not all(f.reached for f, _ in runs):
        print(f"  fledge SAC did NOT reach {SAC_THRESHOLD:g} within {budget} steps for every seed.")


def task_scaling(steps: int, repeats: int, results: Path) -> None:
    raw = load_config_file(shipped_config(f"gym:{PPO_ENV}"))  # type: ignore[arg-type]
    layouts = [(n, False) for n in (1, 2, 4, 8)] + [(2, True)]
    rates: dict[tuple[int, bool], list[float]] = {k: [] for k in layouts}
    shares: dict[tuple[int, bool], list[dict[str, float]]] = {k: [] for k in layouts}
    for rep in range(repeats):
        for n, workers in layouts:
            cfg = json.loads(json.dumps(raw))
            cfg["env_settings"].update(num_envs=n, worker_processes=workers)
            o = guarded(
                lambda: run_fledge(cfg, 100 + rep, results, window=PPO_WINDOW, threshold=None, stop_after_steps=steps),
                "fledge",
                rep,
            )
            if o.error:
                print(f"  scaling num_envs={n} workers={workers}: FAILED {o.error}")
                continue
            rates[(n, workers)].append(o.train_steps / o.train_seconds)
            shares[(n, workers)].append(o.shares)
            print(
                f"  scaling run {rep + 1} num_envs={n} workers={workers}: "
                f"{o.train_steps} steps in {o.train_seconds:.2f} s",
                flush=True,
            )
    print(f"\n### fledge PPO {PPO_ENV} throughput vs num_envs ({steps} env steps per run, {repeats} runs each)")
    keys = ["environment", "inference", "processing", "trainer", "updates"]
    head = f"{'layout':<22} | {'env steps/s':<24} | " + " ".join(f"{k[:8]:>8}" for k in keys)
    print(head)
    print("-" * len(head))
    for n, workers in layouts:
        label = f"{n} {'worker processes' if workers else 'in-process'}"
        r = rates[(n, workers)]
        sh = shares[(n, workers)]
        split = " ".join(f"{100 * statistics.median(s[k] for s in sh):>7.0f}%" for k in keys) if sh else ""
        print(f"{label:<22} | {med_range(r, '{:.0f}'):<24} | {split}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=("ppo", "sac", "scaling"), default=["ppo", "sac", "scaling"])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per task (interleaved fledge/SB3)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 seed, shorter budgets (~3 min)")
    parser.add_argument("--ppo-max-steps", type=int, default=None, help="override the PPO budget (config max_steps)")
    parser.add_argument("--sac-max-steps", type=int, default=None, help="override the SAC budget (config max_steps)")
    parser.add_argument("--scaling-steps", type=int, default=None, help="env steps per scaling run (default 20000)")
    parser.add_argument("--scaling-repeats", type=int, default=None, help="runs per layout (default 2)")
    args = parser.parse_args()
    logging.getLogger("fledge").setLevel(logging.WARNING)
    torch.set_num_threads(1)
    seeds = list(range(args.first_seed, args.first_seed + (1 if args.quick else args.seeds)))
    sac_steps = args.sac_max_steps or (8000 if args.quick else None)
    scaling_steps = args.scaling_steps or (4000 if args.quick else 20000)
    scaling_repeats = args.scaling_repeats or (1 if args.quick else 2)
    try:
        import stable_baselines3
    except ImportError:
        raise SystemExit('Stable-Baselines3 is not installed: pip install "stable-baselines3>=2.3,<3"') from None
    print(
        f"fledge vs SB3 {stable_baselines3.__version__}, torch {torch.__version__}, 1 torch thread, "
        f"seeds {seeds}, tasks {args.tasks}",
        flush=True,
    )
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if "ppo" in args.tasks:
            task_ppo(seeds, Path(tmp), args.ppo_max_steps)
        if "sac" in args.tasks:
            task_sac(seeds, Path(tmp), sac_steps)
        if "scaling" in args.tasks:
            task_scaling(scaling_steps, scaling_repeats, Path(tmp))
    print(f"\ntotal benchmark time {time.perf_counter() - t_all:.0f} s")


if __name__ == "__main__":
    main()
