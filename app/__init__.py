"""fusionserve serving package: torch-free FastAPI + onnxruntime service.

`app.contract` is the one place where training and serving meet (manifest schema and
preprocessing); the training side imports it unchanged so the two cannot drift.
"""
