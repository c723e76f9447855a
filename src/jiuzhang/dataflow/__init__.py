"""Record pipelines on datatrove: the corpus and filter stages' readers, filters, dedup and executors."""
