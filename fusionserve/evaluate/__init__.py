"""`fusionserve evaluate`: score a bundle (in-process) or a running server on a dataset split,
fused and with each modality taken away, and write a report with plots.

Torch-free: it judges the ONNX graph the service loads, through the service's own code.
"""
