"""NumPy baselines for bench/cka.ts (run by it with Debian's /usr/bin/python3 and python3-numpy).

Reads the .npy activation sets listed in <dir>/order.txt and times all-pairs linear CKA (biased
HSIC, Kornblith et al. 2019) two ways, printing one JSON object on stdout:
- per-pair: for each pair, both Grams are formed and centred, then CKA, as the loop over layers
  around the google-research `representation_similarity` notebook does (gram_linear, center_gram,
  cka), float64. Timed on a sample of pairs and scaled to all sets*(sets+1)/2 pairs.
- gram-once: every set's Gram formed and centred once (float32 GEMM), flattened into the rows of
  one matrix G, and every HSIC from one product G G^T.
Written for this benchmark; the formulas are those of the paper.
"""
import json
import sys
import time

import numpy as np


def gram_linear(x):
    return x @ x.T


def center_gram(gram):
    """H K H for a symmetric K: subtract row and column means, add back the grand mean."""
    col_means = gram.mean(axis=0, dtype=np.float64)
    grand = col_means.mean()
    return gram - col_means[:, None] - col_means[None, :] + grand


def cka(gram_x, gram_y):
    gram_x = center_gram(gram_x)
    gram_y = center_gram(gram_y)
    scaled_hsic = gram_x.ravel().dot(gram_y.ravel())
    return scaled_hsic / (np.linalg.norm(gram_x) * np.linalg.norm(gram_y))


def per_pair(sets, pairs):
    out = {}
    t0 = time.perf_counter()
    for i, j in pairs:
        x = sets[i].astype(np.float64)
        y = sets[j].astype(np.float64)
        out[(i, j)] = cka(gram_linear(x), gram_linear(y))
    return time.perf_counter() - t0, out


def gram_once(sets):
    t0 = time.perf_counter()
    n = sets[0].shape[0]
    g = np.empty((len(sets), n * n), dtype=np.float32)
    for k, x in enumerate(sets):
        xc = x - x.mean(0, dtype=np.float64).astype(np.float32)
        g[k] = (xc @ xc.T).ravel()  # centred features give a double-centred Gram
    prod = (g @ g.T).astype(np.float64)
    d = np.sqrt(np.diag(prod))
    result = prod / d[:, None] / d[None, :]
    return time.perf_counter() - t0, result


def main():
    folder, sample = sys.argv[1], int(sys.argv[2])
    names = open(f"{folder}/order.txt").read().split()
    t0 = time.perf_counter()
    sets = [np.load(f"{folder}/{name}.npy") for name in names]
    load = time.perf_counter() - t0
    m = len(sets)
    all_pairs = [(i, j) for i in range(m) for j in range(i, m)]
    rng = np.random.default_rng(0)
    chosen = [all_pairs[k] for k in sorted(rng.choice(len(all_pairs), size=min(sample, len(all_pairs)), replace=False))]
    t_pair, pair_values = per_pair(sets, chosen)
    t_once, matrix = gram_once(sets)
    print(json.dumps({
        "numpy": np.__version__,
        "blas": blas_name(),
        "load_s": load,
        "per_pair_sampled_s": t_pair,
        "per_pair_pairs_timed": len(chosen),
        "per_pair_all_pairs": len(all_pairs),
        "per_pair_s": t_pair / len(chosen) * len(all_pairs),
        "gram_once_s": t_once,
        "gram_once": matrix.ravel().tolist(),
        "per_pair_values": [[i, j, v] for (i, j), v in pair_values.items()],
    }))


def blas_name():
    try:
        cfg = np.show_config(mode="dicts")
        return cfg["Build Dependencies"]["blas"]["name"]
    except Exception:  # older numpy
        return "unknown"


if __name__ == "__main__":
    main()
