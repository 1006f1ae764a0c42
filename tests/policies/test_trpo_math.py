"""Unit tests of the pieces of Algorithm 1 (eq. 3-8): CG, Fisher-vector product, TRPO step, PPO clip, GAE."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.func import functional_call

from scagents.policies.networks import ActorCritic
from scagents.policies.rollout import compute_gae
from scagents.policies.trpo_ppo import (
    conjugate_gradient,
    flat_params,
    make_fisher_vector_product,
    mean_kl,
    ppo_clip_objective,
    surrogate_gradient,
    surrogate_objective,
    trpo_line_search,
    trpo_step_size,
)


def _tiny_policy(continuous: bool, seed: int = 0) -> ActorCritic:
    torch.manual_seed(seed)
    obs_space = gym.spaces.Box(-1, 1, (3,), np.float32)
    act_space = gym.spaces.Box(-1, 1, (2,), np.float32) if continuous else gym.spaces.Discrete(3)
    return ActorCritic(obs_space, act_space, hidden_sizes=(4,)).double()


def _batch(policy: ActorCritic, n: int = 64, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    obs = torch.rand((n, 3), generator=gen, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        dist = policy.dist_params(obs)
        actions = policy.sample(dist, gen)
        logp = policy.log_prob(dist, actions)
    adv = torch.randn(n, generator=gen, dtype=torch.float64)
    old = tuple(None if t is None else t.detach() for t in dist)
    return obs, actions, logp, adv, old


def test_conjugate_gradient_solves_random_spd_systems():
    rng = np.random.default_rng(0)
    for n in (5, 20):
        m = torch.as_tensor(rng.normal(size=(n, n)))
        a = m @ m.T + n * torch.eye(n, dtype=torch.float64)
        b = torch.as_tensor(rng.normal(size=n))
        x = conjugate_gradient(lambda v, a=a: a @ v, b, iters=n, tol=1e-20)
        expected = torch.linalg.solve(a, b)
        assert torch.allclose(x, expected, rtol=1e-8, atol=1e-10)
        assert torch.linalg.norm(a @ x - b) < 1e-8 * torch.linalg.norm(b)


def test_conjugate_gradient_is_approximate_with_few_iterations():
    rng = np.random.default_rng(1)
    m = torch.as_tensor(rng.normal(size=(30, 30)))
    a = m @ m.T + 0.1 * torch.eye(30, dtype=torch.float64)
    b = torch.as_tensor(rng.normal(size=30))
    x = conjugate_gradient(lambda v: a @ v, b, iters=2)
    residual = torch.linalg.norm(a @ x - b)
    assert 1e-6 < residual < torch.linalg.norm(b)  # progress, not convergence


@pytest.mark.parametrize("continuous", [True, False])
@pytest.mark.parametrize("perturb", [0.0, 0.05])
def test_fisher_vector_product_equals_explicit_kl_hessian(continuous, perturb):
    policy = _tiny_policy(continuous)
    obs, _, _, _, old = _batch(policy)
    params = policy.policy_parameters()
    if perturb:  # evaluate away from θ_old too, where the KL gradient is non-zero
        with torch.no_grad():
            gen = torch.Generator().manual_seed(3)
            for p in params:
                p.add_(perturb * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    names = {id(p): n for n, p in policy.named_parameters()}
    keys = [names[id(p)] for p in params]
    shapes = [p.shape for p in params]
    theta = flat_params(params)

    def kl_of(flat: torch.Tensor) -> torch.Tensor:
        chunks, i = {}, 0
        for k, s in zip(keys, shapes, strict=True):
            n = math.prod(s)
            chunks[k] = flat[i:i + n].view(s)
            i += n
        return policy.kl(old, _dist_with(policy, chunks, obs)).mean()

    hess = torch.autograd.functional.hessian(kl_of, theta)
    damping = 0.1
    fvp = make_fisher_vector_product(policy, obs, old, damping)
    gen = torch.Generator().manual_seed(4)
    for _ in range(3):
        v = torch.randn(theta.numel(), generator=gen, dtype=torch.float64)
        assert torch.allclose(fvp(v), hess @ v + damping * v, rtol=1e-7, atol=1e-10)
    # the KL Hessian is positive semi-definite at θ_old (it is the Fisher information there)
    if not perturb:
        assert torch.linalg.eigvalsh(hess).min() > -1e-10


def _dist_with(policy: ActorCritic, chunks: dict, obs: torch.Tensor):
    """policy.dist_params(obs) with the policy parameters replaced by ``chunks``."""

    class _Call(torch.nn.Module):
        def __init__(self, pol):
            super().__init__()
            self.pol = pol

        def forward(self, x):
            return self.pol.dist_params(x)

    return functional_call(_Call(policy), {f"pol.{k}": v for k, v in chunks.items()}, (obs,), strict=False)


@pytest.mark.parametrize("continuous", [True, False])
def test_trpo_step_respects_kl_bound_and_improves_surrogate(continuous):
    policy = _tiny_policy(continuous)
    obs, actions, logp, adv, old = _batch(policy, n=256)
    delta = 0.01
    g, surr0 = surrogate_gradient(policy, obs, actions, logp, adv)
    fvp = make_fisher_vector_product(policy, obs, old, damping=0.1)
    d = conjugate_gradient(fvp, g, iters=10)
    alpha = trpo_step_size(g, d, delta)
    assert alpha == pytest.approx(math.sqrt(2 * delta / float(g @ d)), rel=1e-6)
    theta_old = flat_params(policy.policy_parameters())
    result = trpo_line_search(policy, obs, actions, logp, adv, old, alpha * d, delta=delta)
    assert result.accepted
    theta_new = flat_params(policy.policy_parameters())
    assert torch.allclose(theta_new, theta_old + result.step_fraction * alpha * d)
    with torch.no_grad():
        kl_after = float(mean_kl(policy, obs, old))
        surr_after = float(surrogate_objective(policy, obs, actions, logp, adv))
    assert 0 < kl_after <= delta * (1 + 1e-6)
    assert surr_after > float(surr0)
    assert result.kl == pytest.approx(kl_after)


def test_trpo_line_search_rejects_bad_steps_and_keeps_old_params():
    policy = _tiny_policy(True)
    obs, actions, logp, adv, old = _batch(policy, n=256)
    g, _ = surrogate_gradient(policy, obs, actions, logp, adv)
    fvp = make_fisher_vector_product(policy, obs, old, damping=0.1)
    d = conjugate_gradient(fvp, g, iters=10)
    alpha = trpo_step_size(g, d, 0.01)
    theta_old = flat_params(policy.policy_parameters())
    # descent on the surrogate: never an improvement, whatever the step fraction
    bad = trpo_line_search(policy, obs, actions, logp, adv, old, -alpha * d, delta=0.01)
    assert not bad.accepted and bad.backtracks == 10
    assert torch.equal(flat_params(policy.policy_parameters()), theta_old)
    # an ascent step far outside the trust region with no room to backtrack violates the KL bound
    huge = trpo_line_search(policy, obs, actions, logp, adv, old, 1000 * alpha * d, delta=0.01, backtrack_iters=1)
    assert not huge.accepted
    assert torch.equal(flat_params(policy.policy_parameters()), theta_old)


def test_ppo_clip_matches_eq7_case_by_case():
    eps = 0.2
    ratio = torch.tensor([1.1, 1.5, 0.5, 1.1, 1.5, 0.5], requires_grad=True)
    adv = torch.tensor([2.0, 2.0, 2.0, -2.0, -2.0, -2.0])
    # by hand: min(r A, clip(r, 0.8, 1.2) A)
    expected = torch.tensor([
        2.2,    # A>0, inside: r A
        2.4,    # A>0, above 1+ε: clipped 1.2 A
        1.0,    # A>0, below 1-ε: r A (the min keeps the pessimistic unclipped term)
        -2.2,   # A<0, inside: r A
        -3.0,   # A<0, above 1+ε: r A (pessimistic)
        -1.6,   # A<0, below 1-ε: clipped 0.8 A
    ])
    out = ppo_clip_objective(ratio, adv, eps)
    assert torch.allclose(out, expected)
    out.sum().backward()
    # no gradient where the clipped term is active
    assert torch.allclose(ratio.grad, torch.tensor([2.0, 0.0, 2.0, -2.0, -2.0, 0.0]))


def test_gae_matches_hand_computation():
    gamma, lam = 0.9, 0.5
    rewards = np.array([[1.0], [0.0], [2.0]], np.float32)
    values = np.array([[0.5], [1.0], [0.2]], np.float32)
    dones = np.array([[0.0], [1.0], [0.0]], np.float32)
    last_value = np.array([3.0], np.float32)
    adv, ret = compute_gae(rewards, values, dones, last_value, gamma, lam)
    d2 = 2.0 + gamma * 3.0 - 0.2
    d1 = 0.0 - 1.0                       # episode ends at t=1: no bootstrap
    d0 = 1.0 + gamma * 1.0 - 0.5
    a2, a1 = d2, d1
    a0 = d0 + gamma * lam * a1
    assert np.allclose(adv[:, 0], [a0, a1, a2], atol=1e-6)
    assert np.allclose(ret, adv + values)
