"""What every ontology reader yields: one row per (concept id, surface form)."""

from __future__ import annotations

Row = tuple[str, str, str | None, str | None]
"""(concept_id, name, source, semantic_type); the last two may be ``None``."""
