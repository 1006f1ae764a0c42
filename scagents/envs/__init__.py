"""Gymnasium / PettingZoo perturbation-response and experimental-design environments.

* :class:`ResponseTask` — control cells, perturbation deltas and encodings (twin or real data),
  split by perturbation;
* :class:`PerturbationResponseEnv` / :class:`PerturbationResponseVecEnv` — predict a cell's
  post-perturbation change, reward = negative error (the vector env steps many cells per call);
* :class:`ModalityParallelEnv` — PettingZoo, one agent per modality branch;
  :func:`modality_task` — RNA-only / ATAC-only / joint views of one task (the paper's Tables I–III);
* :class:`DesignEnv` / :class:`BatchDesignParallelEnv` — choose perturbations toward a goal;
  :func:`twin_effect_table` scores candidates on the twin;
* :class:`ShardedVectorEnv` / :class:`RayVectorEnv` — a batched env split into shards, stepped
  in-process or on Ray actors; :class:`StreamDesignEnv` — the closed loop's propose-or-skip design env;
* :class:`SteeringEnv` / :class:`SteeringParallelEnv` — steer a population's fate with timed
  interventions on the twin (:class:`SteeringTask`, :class:`TwinSteerer`);
* toy tasks for the optimisers (:class:`IdentityEnv`, :class:`TargetMatchEnv`, :class:`TargetMatchVecEnv`).
"""

from scagents.envs.design import (
    BatchDesignParallelEnv,
    DesignEnv,
    DesignProblem,
    StreamDesignEnv,
    twin_effect_table,
)
from scagents.envs.encoding import (
    encode_perturbations,
    gene_embedding_from_effects,
    network_gene_embedding,
)
from scagents.envs.modalities import modality_task, twin_feature_genes
from scagents.envs.multiagent import ModalityParallelEnv
from scagents.envs.ray_vec import RayVectorEnv, ShardedVectorEnv, ShardError
from scagents.envs.response import (
    PerturbationResponseEnv,
    PerturbationResponseVecEnv,
    ResponseTask,
    evaluate_policy,
    predict_delta,
)
from scagents.envs.steering import SteeringEnv, SteeringParallelEnv, SteeringTask, TwinSteerer
from scagents.envs.toy import IdentityEnv, TargetMatchEnv, TargetMatchVecEnv

__all__ = [
    "BatchDesignParallelEnv",
    "DesignEnv",
    "DesignProblem",
    "IdentityEnv",
    "ModalityParallelEnv",
    "PerturbationResponseEnv",
    "PerturbationResponseVecEnv",
    "RayVectorEnv",
    "ResponseTask",
    "ShardError",
    "ShardedVectorEnv",
    "SteeringEnv",
    "SteeringParallelEnv",
    "SteeringTask",
    "StreamDesignEnv",
    "TargetMatchEnv",
    "TargetMatchVecEnv",
    "TwinSteerer",
    "encode_perturbations",
    "evaluate_policy",
    "gene_embedding_from_effects",
    "modality_task",
    "network_gene_embedding",
    "predict_delta",
    "twin_effect_table",
    "twin_feature_genes",
]
