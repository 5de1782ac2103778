"""Contrastive losses for tuning encoders on names."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(
    view1: torch.Tensor,
    view2: torch.Tensor,
    temperature: float,
    groups: torch.Tensor | None = None,
    anchors: slice | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE (NT-Xent) over a batch of positive pairs (``view1[i]``, ``view2[i]``).

    Each of the 2B embeddings is scored against the other 2B-1; its pair is the
    positive, the remaining 2B-2 are negatives. With ``groups`` (e.g. concept ids as
    integers), embeddings of the same group are not used as negatives of each other.
    With ``anchors`` (a slice of pair positions), only those pairs' two embeddings are
    anchors, still scored against the whole batch: a rank's share of a gathered batch.
    """
    z = F.normalize(torch.cat([view1, view2]).float(), dim=-1)
    n = view1.shape[0]
    pairs = torch.arange(n, device=z.device)[anchors if anchors is not None else slice(None)]
    rows = torch.cat([pairs, pairs + n])
    target = torch.cat([pairs + n, pairs])
    logits = z[rows] @ z.T / temperature
    own = torch.zeros_like(logits, dtype=torch.bool)
    own[torch.arange(len(rows), device=z.device), rows] = True
    logits = logits.masked_fill(own, float("-inf"))
    if groups is not None:
        g = torch.cat([groups, groups]).to(z.device)
        same = (g[rows][:, None] == g[None, :]) & ~own
        same[torch.arange(len(rows), device=z.device), target] = False
        logits = logits.masked_fill(same, float("-inf"))
    return F.cross_entropy(logits, target)
