"""SAC's losses: `sac_losses` computes every loss of one minibatch through autograd (the reference, read it
first), from the formulas below, each a pure function (torch), in fledge's V-network formulation (see
networks/sac.py). Training uses hand-derived gradients of the same losses where they cover the networks
(fast_update.py, tested equal); update.py chooses.

Notation: B samples, S reward signals, c continuous dimensions, branches n_1..n_k with K = sum n_b
columns. `alpha` are entropy coefficients (exp of the learned log-coefficients).

- Q target:            y = r + gamma (1 - done) V_target(s')                          (B, S)
- Q loss:              0.5 masked_mean((y - Q_i(s, a))^2)   (per element, then over signals)
- Q of a stored action: continuous: the network output; discrete: the stored action's column of
  every branch, averaged over branches.
- Soft state value under the current policy (a' sampled at s, continuous part reparameterised):
      V_soft = E_pi[Q(s, a')] - alpha_c log pi_c(a') - sum_b alpha_b E_pi_b[log pi_b]
  where E_pi[Q] is Q(s, a') for continuous-only and the mean over branches of sum_k pi_b(k) Q_b(s, a'_c, k)
  otherwise (Q of a joint discrete action is the mean of its branch columns, so its expectation under
  the factorised policy is the mean of the per-branch expectations). The joint log-probability is a
  SUM over dimensions and branches, so the entropy terms are summed. ML-Agents 1.1.0 averages the
  branch entropy terms in the value target (but sums them in the policy loss) and ADDS the continuous
  term for hybrid actions; fledge subtracts it and uses the same soft value in both places.
- Value target:        V_soft with min(Q1, Q2) (elementwise, per action column), no gradient.
- Value loss:          0.5 masked_mean((V(s) - value target)^2)
- Policy loss:         masked_mean(-V_soft computed with Q1, averaged over signals)
- Entropy-coefficient loss (log-probabilities without gradient):
      -masked_mean(log_alpha_c (log pi_c(a') + target_c)) - sum_b masked_mean(log_alpha_b (E_pi_b[log pi_b] + target_b))
  with target entropies target_c = -1.0 x c and target_b = 0.2 x log(n_b) (ML-Agents' values; the
  continuous target applies to the joint log-probability, not once per dimension as 1.1.0 does).
- Tanh-squashed Gaussian (networks/distributions.py, shared with acting): a = tanh(u), u ~ N(mean, std);
      log pi(a) = sum_i [log N(u_i; mean_i, std_i) - log(1 - tanh(u_i)^2)]
      log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2 u))      (no 1 - a^2 cancellation)
- Masked means are per element: sum(x * mask) / max(1, sum(mask broadcast to x)). With memory the
  minibatch is whole sequences and every loss above is masked by `masks`, padded rows excluded
  (ML-Agents 1.1.0 averages the Q losses before masking, spec 13.3).
- Learning rate: constant, or linear from the initial value to 1e-10 at max_steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from fledge.networks.distributions import MASKED_LOGIT, squashed_log_prob_from_noise
from fledge.networks.sac import SACNetworks, SquashedActor
from fledge.trainers.sac.records import Batches, SACCoefficients, UpdateStats
from fledge.trainers.schedules import LEARNING_RATE_FLOOR, decayed  # noqa: F401

CONTINUOUS_TARGET_ENTROPY_SCALE = 1.0
DISCRETE_TARGET_ENTROPY_SCALE = 0.2


# -- the losses of one minibatch (the reference) -------------------------------------------------
@dataclass
class SACLosses:
    q1: torch.Tensor
    q2: torch.Tensor
    value: torch.Tensor
    policy: torch.Tensor
    entropy: torch.Tensor  # the entropy coefficients' loss

    def total(self) -> torch.Tensor:
        """The sum; one backward pass of it gives each parameter set its own loss's gradient only."""
        return self.q1 + self.q2 + self.value + self.policy + self.entropy

    def stats(self) -> UpdateStats:
        return UpdateStats(self.policy.detach(), self.value.detach(), self.q1.detach(), self.q2.detach())


def sac_losses(nets: SACNetworks, coefs: SACCoefficients, b: Batches) -> SACLosses:
    """Every SAC loss of one minibatch, through autograd: the reference the hand gradients equal.

    Each parameter set receives exactly the gradient of its own loss (as ML-Agents' three backward
    passes give): the policy reads Q through detached weights, the targets carry no gradient, and the
    entropy coefficients' loss reads detached log-probabilities.
    """
    n_b = len(nets.shape.branches)
    seq, m = b.seq_len, b.masks
    sample = sample_policy(nets.policy, b.x, b.noise, b.allowed, memory=b.memory, seq_len=seq)
    q = nets.q(b.q_input, seq_len=seq)  # (2, B, S, K): Q of the stored action
    if sample.action is not None:  # Q of the fresh action: gradient to the action, never to the Q weights
        q_fresh = nets.q(torch.cat([b.x, sample.action], dim=1), detached=True, seq_len=seq)
    else:  # discrete actions: every action's Q is in q already
        q_fresh = q.detach()
    alpha_c = torch.exp(coefs.log_alpha_c.detach()) if coefs.log_alpha_c is not None else None
    alpha_d = torch.exp(coefs.log_alpha_d.detach()) if coefs.log_alpha_d is not None else None
    penalty = entropy_penalty(alpha_c, sample.log_pi_c, alpha_d, sample.branch_log_probs)
    if n_b:
        assert b.one_hot is not None and sample.probs is not None
        q_taken = taken_action_values(q, b.one_hot, n_b)
        expected_q1 = expected_branch_values(q_fresh[0], sample.probs, n_b)
    else:
        q_taken = q[..., 0]
        expected_q1 = q_fresh[0, ..., 0]
    with torch.no_grad():
        q_min = torch.minimum(q_fresh[0], q_fresh[1])
        if n_b:
            assert sample.probs is not None
            expected_min = expected_branch_values(q_min, sample.probs, n_b)
        else:
            expected_min = q_min[..., 0]
        value_target = soft_value(expected_min, penalty)
        y = q_target(b.rewards, b.done, nets.target_value(b.next_x, b.next_critic_memory, seq), coefs.gammas)
    return SACLosses(
        q1=squared_error_loss(q_taken[0], y, m),
        q2=squared_error_loss(q_taken[1], y, m),
        value=squared_error_loss(nets.value(b.x, b.critic_memory, seq), value_target, m),
        policy=policy_loss(expected_q1, penalty, m),
        entropy=entropy_coefficient_loss(
            coefs.log_alpha_c,
            sample.log_pi_c,
            coefs.target_c,
            coefs.log_alpha_d,
            sample.branch_log_probs,
            coefs.target_d,
            m,
        ),
    )


@dataclass
class PolicySample:
    """What the losses need from the actor for a batch of normalised observations."""

    action: torch.Tensor | None  # (B, c) tanh(u), reparameterised
    log_pi_c: torch.Tensor | None  # (B,) joint log-prob of the continuous part
    probs: torch.Tensor | None  # (B, K) branch probabilities (masked actions 0)
    branch_log_probs: torch.Tensor | None  # (B, n_branches) E_pi_b[log pi_b]


def sample_policy(
    actor: SquashedActor,
    x: torch.Tensor,
    noise: torch.Tensor | None,
    allowed: torch.Tensor | None,
    *,
    memory: torch.Tensor | None = None,
    seq_len: int = 1,
) -> PolicySample:
    """u = mean + std noise, a = tanh(u) with its log-probability; the masked branch probabilities.
    With memory, x holds whole sequences re-run from the actor memories at their starts."""
    branches = actor.shape.branches
    mean, log_std, logits = actor.heads(x, memory, seq_len)
    action = log_pi_c = probs = branch_lp = None
    if mean is not None and log_std is not None and noise is not None:
        u = mean + torch.exp(log_std) * noise
        action = torch.tanh(u)
        log_pi_c = squashed_log_prob_from_noise(noise, log_std, u)
    if logits is not None:
        log_probs = branch_log_softmax(logits, allowed, branches)
        probs = torch.exp(log_probs)
        branch_lp = branch_expected_log_probs(probs, log_probs, branches)
    return PolicySample(action, log_pi_c, probs, branch_lp)


# -- reductions ------------------------------------------------------------------------------------
def masked_mean(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over every element of x; with a per-row mask (B,), padded rows are excluded element by element."""
    if mask is None:
        return x.mean()
    m = mask.to(x.dtype).reshape((-1,) + (1,) * (x.dim() - 1)).expand_as(x)
    return (x * m).sum() / torch.clamp(m.sum(), min=1.0)


# -- critics ---------------------------------------------------------------------------------------
def q_target(
    rewards: torch.Tensor, done: torch.Tensor, next_values: torch.Tensor, gammas: torch.Tensor
) -> torch.Tensor:
    """y = r + gamma (1 - done) V_target(s'). rewards, next_values (B, S); gammas (S,); done (B,), or (B, S)
    where reward signals differ (those that ignore done have 0 there)."""
    live = 1.0 - done.to(rewards.dtype)
    return rewards + gammas * (live if live.dim() == 2 else live.unsqueeze(-1)) * next_values


def squared_error_loss(
    prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """0.5 masked_mean((target - prediction)^2): the Q and the value losses."""
    return 0.5 * masked_mean((target - prediction) ** 2, mask)


def taken_action_values(q: torch.Tensor, one_hot: torch.Tensor, n_branches: int) -> torch.Tensor:
    """Q of the stored discrete actions: q (..., B, S, K), one_hot (B, K) with one 1 per branch -> (..., B, S).

    The mean over branches of the chosen column of each branch.
    """
    return (q * one_hot.unsqueeze(-2)).sum(-1) / n_branches


def expected_branch_values(q: torch.Tensor, probs: torch.Tensor, n_branches: int) -> torch.Tensor:
    """E_pi[Q] for per-action values q (..., B, S, K) and branch probabilities (B, K) -> (..., B, S)."""
    return (q * probs.unsqueeze(-2)).sum(-1) / n_branches


# -- policy ----------------------------------------------------------------------------------------
def branch_log_softmax(logits: torch.Tensor, allowed: torch.Tensor | None, branches: tuple[int, ...]) -> torch.Tensor:
    """Per-branch log-softmax of masked logits (masked entries get about -1e8, never -inf)."""
    if allowed is not None:
        logits = torch.where(allowed, logits, torch.full_like(logits, MASKED_LOGIT))
    if len(branches) == 1:
        return torch.log_softmax(logits, dim=-1)
    return torch.cat([torch.log_softmax(t, dim=-1) for t in torch.split(logits, list(branches), dim=-1)], dim=-1)


def branch_expected_log_probs(probs: torch.Tensor, log_probs: torch.Tensor, branches: tuple[int, ...]) -> torch.Tensor:
    """E_pi_b[log pi_b] = -entropy of each branch: (B, K) -> (B, n_branches)."""
    return torch.stack([t.sum(-1) for t in torch.split(probs * log_probs, list(branches), dim=-1)], dim=-1)


def entropy_penalty(
    alpha_c: torch.Tensor | None,
    log_pi_c: torch.Tensor | None,
    alpha_d: torch.Tensor | None,
    branch_log_probs: torch.Tensor | None,
) -> torch.Tensor:
    """alpha_c log pi_c(a') + sum_b alpha_b E_pi_b[log pi_b], (B,): what the soft value subtracts."""
    total: torch.Tensor | None = None
    if alpha_c is not None and log_pi_c is not None:
        total = alpha_c * log_pi_c
    if alpha_d is not None and branch_log_probs is not None:
        disc = (branch_log_probs * alpha_d).sum(-1)
        total = disc if total is None else total + disc
    assert total is not None, "a policy has at least one kind of action"
    return total


def soft_value(expected_q: torch.Tensor, penalty: torch.Tensor) -> torch.Tensor:
    """V_soft = E_pi[Q] - entropy penalty: expected_q (B, S), penalty (B,) -> (B, S)."""
    return expected_q - penalty.unsqueeze(-1)


def policy_loss(expected_q1: torch.Tensor, penalty: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """masked_mean(penalty - mean over signals of E_pi[Q1(s, a')])."""
    return masked_mean(penalty - expected_q1.mean(-1), mask)


def entropy_coefficient_loss(
    log_alpha_c: torch.Tensor | None,
    log_pi_c: torch.Tensor | None,
    target_c: float,
    log_alpha_d: torch.Tensor | None,
    branch_log_probs: torch.Tensor | None,
    target_d: torch.Tensor | None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """-masked_mean(log_alpha (log pi + target)) per block; the log-probabilities carry no gradient."""
    ref = log_alpha_c if log_alpha_c is not None else log_alpha_d
    loss = torch.zeros((), device=None if ref is None else ref.device)
    if log_alpha_c is not None and log_pi_c is not None:
        loss = loss - masked_mean(log_alpha_c * (log_pi_c.detach() + target_c), mask)
    if log_alpha_d is not None and branch_log_probs is not None and target_d is not None:
        per_branch = log_alpha_d * (branch_log_probs.detach() + target_d)  # (B, n_branches)
        loss = loss - masked_mean(per_branch, mask) * per_branch.shape[-1]  # a sum of per-branch means
    return loss


def target_entropies(continuous_size: int, branches: tuple[int, ...]) -> tuple[float, list[float]]:
    """(-1.0 x continuous_size, [0.2 x log(n) per branch])."""
    cont = -CONTINUOUS_TARGET_ENTROPY_SCALE * continuous_size
    return cont, [DISCRETE_TARGET_ENTROPY_SCALE * math.log(n) for n in branches]


@torch.no_grad()
def soft_update(target: list[torch.Tensor], source: list[torch.Tensor], tau: float) -> None:
    """target = tau source + (1 - tau) target, in place (one fused call)."""
    torch._foreach_lerp_(target, source, tau)
