"""Checkpoint → self-contained ONNX bundle: calibrated graph, int8 variant, manifest, self-test."""
