"""`fusionserve bench`: the served pipeline against its in-process ceiling and a naive baseline.

Everything here measures; nothing here serves. torch is imported only by
`fusionserve.bench.naive_server` (a separate process), so the bench process itself stays as
light as the service it measures.
"""
