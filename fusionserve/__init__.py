"""The `fusionserve` command: one entry point over training, export, verify, serve and bench."""

import os

# numpy's OpenBLAS starts one thread per core for each product; on a serving host they compete
# with onnxruntime's own threads, and the domain check's small per-batch product took up to 10x
# longer under load (fusionserve.bench.domain_cost). Set here, before anything under
# `fusionserve` imports numpy; an explicit OPENBLAS_NUM_THREADS wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
