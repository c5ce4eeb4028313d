"""Why a bundle cannot be served: raised while loading, shown in /models and /health."""


class BundleError(Exception):
    """A bundle cannot be served; the message is the reason shown in /models and /health."""
