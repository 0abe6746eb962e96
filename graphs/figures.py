"""Matplotlib for the jobs' figures: the headless ``Agg`` backend, and a warm-up that hides its start-up cost.

Importing pyplot and loading the first font cost 1–2 s on a small machine, a tenth of a small job's wall time.
A job calls :func:`warm_up` before it starts Spark: a daemon thread imports pyplot and renders one glyph while
the driver waits for its JVM (the main thread then waits on a socket, so the two overlap). The plotting code
calls :func:`pyplot`, which waits for that thread if it is still running (or loads matplotlib itself).

>>> warm_up(); plt = pyplot(); plt.get_backend().lower()
'agg'
"""
from __future__ import annotations

import threading

_lock = threading.Lock()
_thread: threading.Thread | None = None


def _load() -> None:
    from io import BytesIO

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(0.5, 0.5))
    fig.text(0.5, 0.5, "0")
    fig.savefig(BytesIO(), format="png")  # loads the font and the renderer
    plt.close(fig)


def warm_up() -> None:
    """Start loading matplotlib on a daemon thread (once per process)."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_load, name="matplotlib-warm-up", daemon=True)
            _thread.start()


def pyplot():
    """``matplotlib.pyplot`` on the ``Agg`` backend, once :func:`warm_up` (started here if no one did) is done."""
    warm_up()
    _thread.join()
    import matplotlib.pyplot as plt

    return plt
