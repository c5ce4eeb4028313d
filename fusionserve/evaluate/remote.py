"""HTTP path: the same items posted to a running server's `/predict/batch`, so a user can
check a deployment. The server must serve the very bundle given (same sha256 version).

Standard library only (urllib): evaluating a deployment needs no HTTP client package.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from app.contract.manifest import Manifest
from fusionserve.evaluate.errors import EvaluateError, ItemFailed
from fusionserve.evaluate.outputs import ItemOutput


class HttpPredictor:
    """One model on a server; `predict` sends a chunk as one /predict/batch request."""

    def __init__(
        self,
        url: str,
        model: str,
        manifest: Manifest,
        api_key: str | None = None,
        timeout_s: float = 120.0,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise EvaluateError(f"--url must start with http:// or https://, got {url!r}")
        self.url = url.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        self._headers = {"content-type": "application/json", "accept": "application/json"}
        if api_key:
            self._headers["x-api-key"] = api_key
        info = self._request("GET", f"/models/{model}")
        if not info.get("ready"):
            raise EvaluateError(f"{self.url}: model {model!r} is not ready: {info.get('reason')}")
        if info.get("version") != manifest.version:
            raise EvaluateError(
                f"{self.url} serves {model!r} version {info.get('version')}, but the bundle "
                f"given is version {manifest.version}: evaluate the bundle the server serves"
            )
        self.source = {
            "via": self.url,
            "precision": str(info.get("precision")),
            "provider": str(info.get("provider")),
        }

    def _request(self, method: str, route: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + route, data=data, method=method, headers=self._headers
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise EvaluateError(
                f"{method} {self.url}{route}: {exc.code} {_error_text(exc)}"
            ) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise EvaluateError(f"cannot reach {self.url}: {reason}") from None

    def predict(self, items: Sequence[tuple[bytes, str]]) -> list[ItemOutput]:
        body = {
            "model": self.model,
            "items": [
                {"image": base64.b64encode(image).decode("ascii"), "text": text}
                for image, text in items
            ],
        }
        answer = self._request("POST", "/predict/batch", body)
        results = sorted(answer["results"], key=lambda r: r["index"])
        outputs = []
        for result in results:
            if result["status"] != 200:
                error = result.get("error") or {}
                raise ItemFailed(result["index"], error.get("code", "?"), error.get("message", ""))
            prediction = result["result"]
            outputs.append(
                ItemOutput(
                    probabilities={
                        task: p["probabilities"] for task, p in prediction["predictions"].items()
                    },
                    modality_weights=prediction.get("modality_weights"),
                    domain_scores={
                        side: float(d["score"]) for side, d in prediction["domain"].items()
                    }
                    if prediction.get("domain")
                    else None,
                )
            )
        if len(outputs) != len(items):
            raise EvaluateError(f"{self.url} answered {len(outputs)} of {len(items)} items")
        return outputs

    def close(self) -> None:
        """Nothing to release: every request opens and closes its own connection."""


def _error_text(exc: urllib.error.HTTPError) -> str:
    """The service's error message from an error response, else the HTTP reason."""
    try:
        error = json.loads(exc.read()).get("error") or {}
        return f"{error.get('code')}: {error.get('message')}"
    except (ValueError, AttributeError):
        return str(exc.reason)
