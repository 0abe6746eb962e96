"""Child-process runner for pure-ldp's PEM (benchmark baseline only; runs in its own venv).

pure-ldp 1.2.0 pins old numpy in places, so ``benchmarks.heavy_hitters`` calls this file with
``.bench-venvs/pureldp/bin/python benchmarks/pureldp_pem.py IN.npz OUT.json``. ``IN.npz`` holds the
users' items (``items``) and the parameters; items become ``bits``-long bit strings (pure-ldp's
binary alphabet). Writes the found items and the wall time.
"""
import json
import random
import sys
import time

import numpy as np


def main(inp: str, out: str) -> None:
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
