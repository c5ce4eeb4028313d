"""Training: config schema, teacher CE training and student distillation."""
