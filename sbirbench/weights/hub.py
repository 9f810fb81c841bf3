"""timm's own pretrained weights: the local hub cache first, a download only with a
network, and one clear line offline; and model names checked with suggestions."""

from __future__ import annotations

import socket
from typing import Any

from sbirbench.errors import UserError

HUB_HOST = "huggingface.co"


def _hub_reachable(timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


def timm_pretrained(name: str, **kwargs: Any) -> Any:
    """``timm.create_model(name, pretrained=True)``: from the local hub cache if the weights
    are there, else downloaded; without a connection, one clear error (not a minute of
    retries)."""
    import huggingface_hub.constants as hub
    import timm

    offline = hub.HF_HUB_OFFLINE
    hub.HF_HUB_OFFLINE = True  # cache only: fast, and works without a network
    try:
        return timm.create_model(name, pretrained=True, **kwargs)
    except Exception:
        pass
    finally:
        hub.HF_HUB_OFFLINE = offline
    if offline or not _hub_reachable():
        raise UserError(
            f"cannot download pretrained weights for '{name}' ({HUB_HOST} is unreachable and "
            "they are not in the local cache); download them elsewhere and pass "
            "--set backbone.weights=PATH"
        )
    try:
        return timm.create_model(name, pretrained=True, **kwargs)
    except Exception as exc:
        raise UserError(
            f"downloading pretrained weights for '{name}' failed: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}; "
            "pass --set backbone.weights=PATH instead"
        ) from None


def check_timm_model(name: str) -> None:
    """A one-line error, with suggestions, for a name timm does not know."""
    import difflib

    import timm

    if timm.is_model(name):
        return
    base = name.split(".")[0]
    close = difflib.get_close_matches(base, timm.list_models(), n=3, cutoff=0.7)
    hint = f"; did you mean {' or '.join(close)}?" if close else " (see timm.list_models())"
    raise UserError(f"timm has no model '{name}'{hint}")
