"""The analysis steps the agents use, in scanpy's style (AnnData / MuData in, results in the object).

=====================  ============================================================================
``simulate``           the digital twin: control and perturbed cells (RNA, ATAC, protein) as MuData
``load_model``         a twin model (``"th"``, ``"krumsiek11"`` or a BoolNet / SBML-qual file)
``integrate``          joint embedding of the modalities, clusters, pseudotime (``.obsm``, ``.obs``)
``infer_network``      gene-regulatory network (``.uns["grn"]``, ``.varm["grn_coef"]``)
``network_edges``      the inferred network as an edge table
``perturb``            in-silico perturbation through the network (``.layers["perturb_delta"]``)
``response_task``      the policy's environment task from data (``ResponseTask.from_anndata``)
``train``              train the TRPO→PPO (or PPO / TRPO) policy on an environment
``propose_round``      propose (and record) the next round of a closed-loop campaign
=====================  ============================================================================

``scagents.run(adata, goal=...)`` runs them all through the agent graph.
"""

from scagents._lazy import lazy_exports

_WHERE = {
    "simulate": "scagents.twin:simulate",
    "load_model": "scagents.twin:load_model",
    "integrate": "scagents.integration:integrate",
    "infer_network": "scagents.grn:infer_network",
    "network_edges": "scagents.grn:network_edges",
    "perturb": "scagents.grn:perturb",
    "response_task": "scagents.envs:ResponseTask.from_anndata",
    "train": "scagents.policies:train",
    "propose_round": "scagents.campaign:propose_round",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
