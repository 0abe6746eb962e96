"""Child-process runner for pure-ldp's PEM (benchmark baseline only; runs in its own venv).

pure-ldp 1.2.0 pins old numpy in places, so ``benchmarks.heavy_hitters`` calls this file with
``.bench-venvs/pureldp/bin/python benchmarks/pureldp_pem.py IN.npz OUT.json``. ``IN.npz`` holds the
users' items (``items``) and the parameters; items become ``bits``-long bit strings (pure-ldp's
binary alphabet). Writes the found items and the wall time.

pure-ldp's package ``__init__`` imports every oracle, and its RAPPOR server imports scikit-learn
(plus statsmodels/plotting in its simulation helpers), which PEM never uses and the benchmark venv
does not install: such modules, when missing, are replaced by stubs that fail only if called.
pure-ldp hashes ``str`` inputs with ``xxhash``, which xxhash ≥ 2 rejects; the runner encodes them
as UTF-8 (what xxhash 1.x did), so the hash family is unchanged.
"""
import importlib.abc
import importlib.machinery
import importlib.util
import json
import random
import sys
import time
import types

import numpy as np

_OPTIONAL = ("sklearn", "statsmodels", "seaborn", "matplotlib", "pandas")


class _Stub(types.ModuleType):
    """Placeholder module: any attribute is a callable that raises ImportError."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)

        def missing(*_a, **_k):
            raise ImportError(f"{self.__name__}.{name} is not installed in the benchmark venv")
        return missing


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serve :class:`_Stub` for optional packages that are not installed (PEM does not use them)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in _OPTIONAL:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        return _Stub(spec.name)

    def exec_module(self, module):
        module.__path__ = []


def _stub_missing_optional() -> None:
    missing = [m for m in _OPTIONAL if importlib.util.find_spec(m) is None]
    if missing:
        sys.meta_path.append(_StubFinder())  # consulted only after the real finders fail


def _xxhash_accepts_str() -> None:
    import xxhash

    for name in ("xxh32", "xxh64"):
        orig = getattr(xxhash, name)

        def wrapped(data=b"", seed=0, _orig=orig):
            return _orig(data.encode("utf-8") if isinstance(data, str) else data, seed=seed)
        setattr(xxhash, name, wrapped)


def main(inp: str, out: str) -> None:
    _stub_missing_optional()
    _xxhash_accepts_str()
    from pure_ldp.heavy_hitters.prefix_extending import PEMClient, PEMServer

    d = np.load(inp)
    items, bits, eps, k = d["items"], int(d["bits"]), float(d["epsilon"]), int(d["k"])
    start, frag, seed = int(d["start"]), int(d["fragment"]), int(d["seed"])
    random.seed(seed)
    np.random.seed(seed)
    t = time.time()
    client = PEMClient(epsilon=eps, start_length=start, max_string_length=bits, fragment_length=frag)
    server = PEMServer(epsilon=eps, start_length=start, max_string_length=bits, fragment_length=frag)
    for v in items.tolist():
        server.aggregate(client.privatise(format(v, f"0{bits}b")))
    found, _ = server.find_heavy_hitters(k=k)
    found_ints = [int(s.replace("*", ""), 2) for s in found]
    with open(out, "w") as fh:
        json.dump({"found": found_ints, "seconds": time.time() - t}, fh)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
