"""Loading a model and picking its device: the one place synthesis, evaluation, influence and training do it."""
