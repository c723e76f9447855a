"""Thin click commands, one per pipeline stage; ``dvc.yaml`` runs them as ``jiuzhang <stage> ...``."""
