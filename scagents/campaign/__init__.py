"""Closed-loop experimental design: campaigns, a durable SQLite ledger and acquisition.

Public functions (used by ``scagents next``, ``scagents ingest`` and ``scagents campaign``):

* :func:`create_campaign` — a goal, candidate genes, features;
* :func:`propose_round` — propose and record the next batch (one transaction);
* :func:`ingest` — add a results file (one transaction, idempotent per file content);
* :func:`history`, :func:`campaign_info`, :func:`campaign_progress`, :func:`plot_campaign` — progress
  table, hits per round against random batches (on a whole-library file's fixed scale, see
  :mod:`scagents.campaign.progress`) and plot;
* :func:`campaign_summaries` — one row per campaign (``scagents campaigns``);
* :func:`designer_config` → :func:`build_designer` — the one way a designer is built (``next``, the
  tools and ``benchmarks/closed_loop.py``), with one set of defaults.
"""

from scagents.campaign.acquisition import (
    DESIGNERS,
    build_designer,
    designer_config,
    hit_likeness,
    make_designer,
)
from scagents.campaign.ledger import (
    CampaignError,
    IngestError,
    IngestSummary,
    campaign_info,
    campaign_progress,
    campaign_summaries,
    create_campaign,
    history,
    ingest,
    list_campaigns,
    plot_campaign,
    propose_round,
)

__all__ = ["CampaignError", "IngestError", "IngestSummary", "campaign_info", "campaign_progress", "campaign_summaries",
           "create_campaign", "history",
           "ingest", "list_campaigns", "plot_campaign", "propose_round", "DESIGNERS", "hit_likeness",
           "make_designer", "designer_config", "build_designer"]
