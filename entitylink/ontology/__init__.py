"""Ontologies: readers for each file format family and the table of concept ids and surface forms (no torch)."""

from .table import READERS, Ontology, count_ids, join_ids, parse_spec

__all__ = ["READERS", "Ontology", "count_ids", "join_ids", "parse_spec"]
