"""Import checkpoints trained by the research code (spec: shared/reference) as bundles."""
