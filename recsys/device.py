"""The one device factory for torch (and the faiss backend choice) used across graphrec.

``auto`` resolves to CUDA when a CUDA device is visible, otherwise CPU; an explicit ``cuda``
request on a machine without CUDA is an error rather than a silent fallback.

>>> resolve_device("cpu").type
'cpu'
>>> resolve_device("auto").type in {"cpu", "cuda"}
True
"""
from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def cuda_available() -> bool:
    """True when torch sees at least one CUDA device."""
    return bool(torch.cuda.is_available()) and torch.cuda.device_count() > 0


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """Map ``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` (or a ``torch.device``) to a usable device.

    Args:
        spec: the requested device; ``None`` means ``auto``.

    Returns:
        ``torch.device('cuda')`` for ``auto`` when CUDA is present, else ``torch.device('cpu')``.

    Raises:
        ValueError: for an unknown spec, or ``cuda`` requested without a CUDA device.
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        dev = torch.device("cuda") if cuda_available() else torch.device("cpu")
    elif spec == "cpu":
        dev = torch.device("cpu")
    elif spec == "cuda" or spec.startswith("cuda:"):
        if not cuda_available():
            raise ValueError(f"device {spec!r} requested but CUDA is not available (use --device auto or cpu)")
        dev = torch.device(spec)
    else:
        raise ValueError(f"unknown device {spec!r}; expected one of {DEVICE_CHOICES} or 'cuda:N'")
    log.debug("device %s -> %s", spec, dev)
    return dev


def device_name(dev: torch.device) -> str:
    """Human-readable device description for metrics/meta files (e.g. ``cuda:0 (NVIDIA H200)``)."""
    if dev.type == "cuda":
        idx = dev.index if dev.index is not None else torch.cuda.current_device()
        return f"cuda:{idx} ({torch.cuda.get_device_name(idx)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def faiss_backend(spec: str | torch.device | None = "auto") -> str:
    """``'gpu'`` when the resolved device is CUDA and faiss has GPU support, else ``'cpu'``.

    faiss-gpu wheels do not support every card (see environment.md); callers fall back to exact
    torch matrix products on the GPU when this returns ``'cpu'`` on a CUDA device.
    """
    dev = resolve_device(spec)
    if dev.type != "cuda":
        return "cpu"
    try:
        import faiss

        return "gpu" if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0 else "cpu"
    except Exception:  # pragma: no cover - faiss missing or broken
        return "cpu"
