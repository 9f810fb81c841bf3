"""Pretrained weights: reading files, key converters, strict loading and the registry of
weight sources (docs/weights.md). Backbone plugins use these; they hold no model."""
