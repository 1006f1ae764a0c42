"""Policy optimisers: PPO, TRPO and the TRPO→PPO schedule of arXiv:2510.13018.

>>> from scagents.policies import TrainConfig, train
>>> policy, log = train(env, TrainConfig(algo="trpo_ppo", total_steps=50_000))  # doctest: +SKIP
>>> action = policy.predict(obs)  # doctest: +SKIP
"""

from scagents.policies.networks import ActorCritic, SpaceError
from scagents.policies.rollout import RolloutBuffer, as_vector_env, compute_gae
from scagents.policies.trpo_ppo import (
    LOG_COLUMNS,
    TrainConfig,
    TrainConfigError,
    TrainingLog,
    load,
    save,
    train,
)

__all__ = [
    "ActorCritic", "SpaceError", "RolloutBuffer", "as_vector_env", "compute_gae", "LOG_COLUMNS",
    "TrainConfig", "TrainConfigError", "TrainingLog", "load", "save", "train",
]
