"""SAC gradient updates per second: fledge's update path next to a bare PyTorch loop doing the same update.

Both sides train the same networks (actor, twin Q, V, target V: `--layers` x `--hidden` SiLU MLPs) with
the same losses (ML-Agents' V-network SAC, continuous actions, 3DBall-sized: 8 observations, 2
actions) on batches of `--batch` rows drawn from the same replay data. The bare loop is written
straightforwardly: nn.Sequential networks, plain torch.optim.Adam (default options), one backward
and one step per optimiser as ML-Agents does, per-update index sampling. Measurements are
interleaved (fledge, bare, fledge, ...) for each thread count, repeated, and reported as medians
with ranges; a second, timed pass splits an update into sampling, forward, backward and step
(fledge: sampling is one `sample_batches` call for the whole measurement, divided by its updates;
forward/backward are fast_update.HandGradients' two halves, the hand-derived gradients; step is the fused
Adam step over the three optimisers plus the target network's soft update).

    .venv/bin/python benchmarks/sac_updates.py [--updates 100] [--repeats 5] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from fledge.config import build_run_options
from fledge.envs import registry
from fledge.stats import StatsReporter
from fledge.trainers.sac import fast_update
from fledge.trainers.sac.trainer import SACTrainer

OBS, ACT = 8, 2
GAMMA, TAU, INIT_ENTCOEF, LR = 0.99, 0.005, 0.5, 3e-4
PARTS = ("sampling", "forward", "backward", "step")


def fledge_trainer(hidden: int, layers: int, batch: int, rows: int) -> SACTrainer:
    raw = {
        "default_settings": {
            "trainer_type": "sac",
            "hyperparameters": {
                "batch_size": batch,
                "buffer_size": rows,
                "learning_rate": LR,
                "tau": TAU,
                "init_entcoef": INIT_ENTCOEF,
            },
            "network_settings": {"hidden_units": hidden, "num_layers": layers, "normalize": True},
            "reward_signals": {"extrinsic": {"gamma": GAMMA}},
        },
        "env_settings": {"env_path": "3DBall"},
    }
    options = build_run_options(raw)
    env = registry.make("3DBall", seed=0)
    env.reset()
    spec = env.behavior_specs["3DBall"]
    env.close()
    return SACTrainer(
        behavior_name="3DBall", spec=spec, settings=options.behavior_settings("3DBall"), stats=StatsReporter([]), seed=0
    )


def replay_data(rows: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "obs": rng.standard_normal((rows, OBS), dtype=np.float32),
        "next_obs": rng.standard_normal((rows, OBS), dtype=np.float32),
        "continuous": rng.uniform(-1, 1, (rows, ACT)).astype(np.float32),
        "discrete": np.zeros((rows, 0), np.int32),
        "allowed": np.ones((rows, 0), np.bool_),
        "rewards": (0.1 * rng.standard_normal(rows)).astype(np.float32),
        "done": rng.random(rows) < 0.01,
    }


class FledgeSide:
    """The trainer's own update path: batches for `chunk` updates sampled at once, then `update` each."""

    def __init__(self, trainer: SACTrainer, chunk: int) -> None:
        self.trainer, self.chunk = trainer, chunk

    def run(self, n: int) -> None:
        up = self.trainer.updater
        done = 0
        while done < n:
            k = min(self.chunk, n - done)
            batches = self.trainer.sample_batches(k)
            for i in range(k):
                up.update(batches.get(i))
            done += k

    def timed(self, n: int, acc: dict[str, float]) -> None:
        up = self.trainer.updater
        hand = up.gradients
        assert isinstance(hand, fast_update.HandGradients)
        t0 = time.perf_counter()
        batches = self.trainer.sample_batches(n)
        acc["sampling"] += time.perf_counter() - t0
        for i in range(n):
            t0 = time.perf_counter()
            forward_pass = hand.forward(batches.get(i))
            t1 = time.perf_counter()
            grads = hand.backward(forward_pass)
            t2 = time.perf_counter()
            up.stepper.step_with(grads)
            up.soft_update()
            t3 = time.perf_counter()
            acc["forward"] += t1 - t0
            acc["backward"] += t2 - t1
            acc["step"] += t3 - t2


def mlp(n_in: int, hidden: int, layers: int, n_out: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    size = n_in
    for _ in range(layers):
        mods += [nn.Linear(size, hidden), nn.SiLU()]
        size = hidden
    mods.append(nn.Linear(size, n_out))
    return nn.Sequential(*mods)


class BareSide:
    """The same SAC update written the plain way."""

    def __init__(self, data: dict[str, np.ndarray], hidden: int, layers: int, batch: int) -> None:
        torch.manual_seed(0)
        self.data = {k: torch.from_numpy(v) for k, v in data.items() if v.shape[-1:] != (0,)}
        self.data["done"] = self.data["done"].float()
        obs = self.data["obs"]
        self.mean, self.std = obs.mean(0), obs.std(0) + 1e-8
        self.batch = batch
        self.actor = mlp(OBS, hidden, layers, 2 * ACT)
        self.q1 = mlp(OBS + ACT, hidden, layers, 1)
        self.q2 = mlp(OBS + ACT, hidden, layers, 1)
        self.v = mlp(OBS, hidden, layers, 1)
        self.v_target = copy.deepcopy(self.v).requires_grad_(False)
        self.log_alpha = torch.full((1,), math.log(INIT_ENTCOEF), requires_grad=True)
        self.target_entropy = -float(ACT)
        self.policy_opt = torch.optim.Adam(self.actor.parameters(), lr=LR)
        self.value_opt = torch.optim.Adam([*self.q1.parameters(), *self.q2.parameters(), *self.v.parameters()], lr=LR)
        self.entropy_opt = torch.optim.Adam([self.log_alpha], lr=LR)

    def sample(self) -> dict[str, torch.Tensor]:
        idx = torch.randint(0, len(self.data["obs"]), (self.batch,))
        b = {k: v[idx] for k, v in self.data.items()}
        b["obs"] = torch.clamp((b["obs"] - self.mean) / self.std, -5, 5)
        b["next_obs"] = torch.clamp((b["next_obs"] - self.mean) / self.std, -5, 5)
        return b

    def losses(self, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, xn = b["obs"], b["next_obs"]
        mean, log_std = self.actor(x).chunk(2, dim=-1)
        log_std = torch.clamp(log_std, -20, 2)
        dist = torch.distributions.Normal(mean, log_std.exp())
        u = dist.rsample()
        a = torch.tanh(u)
        log_pi = (dist.log_prob(u) - 2 * (math.log(2) - u - nn.functional.softplus(-2 * u))).sum(-1, keepdim=True)
        q1 = self.q1(torch.cat([x, b["continuous"]], -1))
        q2 = self.q2(torch.cat([x, b["continuous"]], -1))
        q1p = self.q1(torch.cat([x, a], -1))
        q2p = self.q2(torch.cat([x, a], -1))
        v = self.v(x)
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():
            y = b["rewards"].unsqueeze(-1) + GAMMA * (1 - b["done"].unsqueeze(-1)) * self.v_target(xn)
            v_backup = torch.min(q1p, q2p) - alpha * log_pi
        q_loss = 0.5 * nn.functional.mse_loss(q1, y) + 0.5 * nn.functional.mse_loss(q2, y)
        value_loss = q_loss + 0.5 * nn.functional.mse_loss(v, v_backup)
        policy_loss = (alpha * log_pi - q1p).mean()
        entropy_loss = -(self.log_alpha * (log_pi + self.target_entropy).detach()).mean()
        return policy_loss, value_loss, entropy_loss

    def backward_and_step(self, losses: tuple[torch.Tensor, ...], acc: dict[str, float] | None) -> None:
        for loss, opt in zip(losses, (self.policy_opt, self.value_opt, self.entropy_opt)):
            t0 = time.perf_counter()
            opt.zero_grad()
            loss.backward()
            t1 = time.perf_counter()
            opt.step()
            if acc is not None:
                acc["backward"] += t1 - t0
                acc["step"] += time.perf_counter() - t1
        t0 = time.perf_counter()
        with torch.no_grad():
            for tp, p in zip(self.v_target.parameters(), self.v.parameters()):
                tp.mul_(1 - TAU).add_(p, alpha=TAU)
        if acc is not None:
            acc["step"] += time.perf_counter() - t0

    def run(self, n: int) -> None:
        for _ in range(n):
            self.backward_and_step(self.losses(self.sample()), None)

    def timed(self, n: int, acc: dict[str, float]) -> None:
        for _ in range(n):
            t0 = time.perf_counter()
            b = self.sample()
            t1 = time.perf_counter()
            losses = self.losses(b)
            t2 = time.perf_counter()
            acc["sampling"] += t1 - t0
            acc["forward"] += t2 - t1
            self.backward_and_step(losses, acc)


def rate(run: Callable[[int], None], n: int) -> float:
    t0 = time.perf_counter()
    run(n)
    return n / (time.perf_counter() - t0)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):8.1f}  [{min(values):.1f} .. {max(values):.1f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--updates", type=int, default=100, help="updates per measurement")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rows", type=int, default=50_000, help="replay buffer rows")
    args = parser.parse_args()
    data = replay_data(args.rows)
    trainer = fledge_trainer(args.hidden, args.layers, args.batch, args.rows)
    trainer.buffer.append(**data)
    trainer.nets.policy.normalizer.update(data["obs"])  # type: ignore[union-attr]
    fledge = FledgeSide(trainer, chunk=args.updates)
    bare = BareSide(data, args.hidden, args.layers, args.batch)
    print(
        f"SAC updates/s, batch {args.batch}, {args.layers}x{args.hidden} networks, obs {OBS}, {ACT} continuous "
        f"actions; {args.updates} updates per measurement, {args.repeats} repeats, median [min .. max]"
    )
    for threads in args.threads:
        torch.set_num_threads(threads)
        fledge.run(10)  # warm-up
        bare.run(10)
        rates: dict[str, list[float]] = {"fledge": [], "bare": []}
        for _ in range(args.repeats):
            rates["fledge"].append(rate(fledge.run, args.updates))
            rates["bare"].append(rate(bare.run, args.updates))
        ratios = [f / b for f, b in zip(rates["fledge"], rates["bare"])]
        parts: dict[str, dict[str, float]] = {}
        for name, side in (("fledge", fledge), ("bare", bare)):
            acc = dict.fromkeys(PARTS, 0.0)
            side.timed(args.updates, acc)
            parts[name] = {k: 1e3 * v / args.updates for k, v in acc.items()}
        print(f"\n{threads} torch thread(s)")
        print(f"  fledge      {spread(rates['fledge'])}")
        print(f"  bare torch  {spread(rates['bare'])}")
        print(f"  ratio       {statistics.median(ratios):8.2f}  [{min(ratios):.2f} .. {max(ratios):.2f}]")
        print("  ms per update      " + "  ".join(f"{p:>9}" for p in PARTS))
        for name in ("fledge", "bare"):
            print(f"  {name:<18} " + "  ".join(f"{parts[name][p]:9.3f}" for p in PARTS))


if __name__ == "__main__":
    main()
