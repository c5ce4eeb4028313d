"""Open Inference Protocol v2 (KServe / Triton REST) on the same service and batcher.

Thin transport only: tensors in (JSON or the binary-data extension) become `InferenceService`
items; predictions come back as `probs_<task>`, `label_<task>` and `modality_weights` tensors.
"""
