"""The one error `fusionserve evaluate` reports to the user (exit status 2, no traceback)."""


class EvaluateError(Exception):
    """Bad arguments, a dataset that does not fit the bundle, or a server that refused."""


class ItemFailed(EvaluateError):
    """The service refused one item of a chunk; `index` is its place in that chunk."""

    def __init__(self, index: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.index = index
