"""One PPO gradient computation: a hand-gradient accelerator where one covers the network (fast_gradients for
vector-observation MLPs, fast_recurrent for those with LSTM memory), else autograd.

Both return `losses.ppo_loss`'s (total, policy_loss, value_loss) as detached tensors and leave d total /
d parameter in every parameter's `.grad`, ready for the optimiser step.
"""

from __future__ import annotations

import torch

from fledge.networks.actor_critic import ActorCritic
from fledge.trainers.ppo import fast_gradients, fast_recurrent
from fledge.trainers.ppo.losses import Minibatch, ppo_loss


def autograd_gradients(
    model: ActorCritic, mb: Minibatch, *, epsilon: float, beta: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The reference path: `ppo_loss` and backward()."""
    model.zero_grad(set_to_none=True)
    total, p_loss, v_loss = ppo_loss(model, mb, epsilon=epsilon, beta=beta)
    total.backward()
    return total.detach(), p_loss.detach(), v_loss.detach()


def ppo_gradients(
    model: ActorCritic, mb: Minibatch, *, epsilon: float, beta: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, policy_loss, value_loss) of a minibatch, with the gradients in `.grad`."""
    if fast_gradients.covers(model):
        return fast_gradients.loss_and_gradients(model, mb, epsilon=epsilon, beta=beta)
    if fast_recurrent.covers(model):
        return fast_recurrent.loss_and_gradients(model, mb, epsilon=epsilon, beta=beta)
    return autograd_gradients(model, mb, epsilon=epsilon, beta=beta)
