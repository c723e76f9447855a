"""The DVC pipeline from outside: verifying outputs against a dvc.lock, closeness of numbers, stage timings."""
