"""Evaluation of trained models: ``report.evaluate`` (``facezoo evaluate``) and its plots."""
