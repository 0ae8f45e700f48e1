"""AdamStepper gives bit-identical parameters and optimiser state to torch's own fused Adam step."""

from __future__ import annotations

import torch

from fledge.trainers.fast_adam import AdamStepper


def test_same_numbers_as_torch_adam() -> None:
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 2))
    b = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 2))
    b.load_state_dict(a.state_dict())
    opt_a = torch.optim.Adam(a.parameters(), lr=1e-2, fused=True)
    opt_b = torch.optim.Adam(b.parameters(), lr=1e-2, fused=True)
    stepper = AdamStepper(opt_b)
    x = torch.randn(16, 5)
    for i in range(5):
        for model, step in ((a, opt_a.step), (b, stepper.step)):
            model.zero_grad(set_to_none=True)
            model(x).pow(2).sum().backward()
            step()
        opt_a.param_groups[0]["lr"] = opt_b.param_groups[0]["lr"] = 1e-2 / (i + 2)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    sa, sb = opt_a.state_dict()["state"], opt_b.state_dict()["state"]
    for key in sa:
        for name in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(sa[key][name], sb[key][name])
