"""Derived weights (the folded CDC kernel, the invertible 1x1 convolution) are built once for
inference and rebuilt exactly when a parameter changes or a step trains."""
import copy

import pytest
import torch

from basicsr.archs.fusion_blocks import CDC, InvertibleConv1x1


def counting(module, name, monkeypatch):
    calls = []
    build = getattr(module, name)
    monkeypatch.setattr(module, name, lambda: calls.append(1) or build())
    return calls


@pytest.mark.parametrize('make, derived', [(lambda: CDC(4, 4), 'kernel'), (lambda: InvertibleConv1x1(4), 'weight')])
def test_derived_weights_are_cached_for_inference_and_rebuilt_on_change(monkeypatch, make, derived):
    torch.manual_seed(0)
    module = make()
    with torch.no_grad():
        next(iter(module.parameters())).add_(0.3)  # a non-trivial gate or weight
    x = torch.rand(1, 4, 8, 8)
    calls = counting(module, derived, monkeypatch)
    with torch.no_grad():
        first = module(x)
        assert torch.equal(module(x), first) and len(calls) == 1
        fresh = copy.deepcopy(module)
        for param in module.parameters():
            param.mul_(1.5)  # an optimizer step or an EMA update, in place
        changed = module(x)
        assert len(calls) == 2 and not torch.equal(changed, first)
        module.load_state_dict(fresh.state_dict())
        assert torch.equal(module(x), first) and len(calls) == 3
    trained = module(x)  # with gradients: built on every call, differentiable
    trained.sum().backward()
    assert len(calls) == 4 and all(p.grad is not None for p in module.parameters())
    module(x)
    assert len(calls) == 5
