"""Scores Encore's ranked lists beside the strongest simple peers, on one split, with one
metric code, so the table compares like with like.

    python benches/quality/peers.py --train TRAIN.csv --test TEST.csv \
        [--encore NAME=LISTS.csv ...] [--k 10] [--json OUT.json]

TRAIN and TEST are what `encore evaluate --split-out DIR` writes (user_id,item_id,timestamp,
rating). Each LISTS file is what `encore batch-recommend --out` writes (user_id,rank,item_id,
score), computed on TRAIN. The peers see TRAIN as binary interactions (every interaction
counts one, which scores better on ratings data than ratings as strengths) and choose their
one main setting on a validation split carved out of TRAIN the way TEST was carved out of
the data (each user's latest 20%, or their last interaction):

- popularity: items by how many users had them;
- implicit ALS (the `implicit` package, 64 factors, its defaults otherwise; regularization
  chosen from 0.01, 0.1, 1 and alpha from 1, 10, 40);
- item-kNN: implicit's CosineRecommender, K chosen from 20, 50, 100, 200;
- EASE (Steck 2019): B = I - P / diag(P) with P = (X'X + lambda I)^-1, diag(B) = 0,
  lambda chosen from 10 to 3000.

Metrics, over the test users (those with a held-out item not in their training items):
NDCG@k and recall@k with binary relevance; coverage (share of training items in at least
one list); novelty (mean self-information -log2(users with the item / users) of the listed
items); intra-list diversity (mean 1 - cosine similarity of the items' training user
vectors over the pairs of a list).
"""

import argparse
import csv
import json
import math
import sys
import time

import numpy as np
import scipy.sparse as sp


def read_rows(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return [
            (r["user_id"], r["item_id"], float(r["timestamp"]), float(r.get("rating") or 1.0))
            for r in reader
        ]


class Data:
    """Binary user x item matrix of TRAIN, with the ids interned."""

    def __init__(self, rows):
        self.users, self.items = {}, {}
        for u, i, _, _ in rows:
            self.users.setdefault(u, len(self.users))
            self.items.setdefault(i, len(self.items))
        self.user_ids = list(self.users)
        self.item_ids = list(self.items)
        cells = {(self.users[u], self.items[i]) for u, i, _, _ in rows}
        r = np.fromiter((c[0] for c in cells), dtype=np.int32, count=len(cells))
        c = np.fromiter((c[1] for c in cells), dtype=np.int32, count=len(cells))
        self.x = sp.csr_matrix(
            (np.ones(len(cells), dtype=np.float32), (r, c)),
            shape=(len(self.users), len(self.items)),
        )


def held_out(rows, protocol):
    """Each user's latest 20% (round, at least one, never all) or last interaction, by
    timestamp with file order among equals; held-out items the user had before are dropped.
    The same rule as `encore evaluate`'s split."""
    per_user = {}
    for n, r in enumerate(rows):
        per_user.setdefault(r[0], []).append(n)
    train, test = [], {}
    for u, ns in per_user.items():
        ns.sort(key=lambda n: rows[n][2])
        if len(ns) < 2:
            held = 0
        elif protocol == "last":
            held = 1
        else:
            held = min(max(int(math.floor(len(ns) * 0.2 + 0.5)), 1), len(ns) - 1)
        cut = len(ns) - held
        train.extend(rows[n] for n in ns[:cut])
        seen = {rows[n][1] for n in ns[:cut]}
        wanted = {rows[n][1] for n in ns[cut:]} - seen
        if wanted:
            test[u] = wanted
    return train, test


def top_k(scores, seen, k):
    scores = scores.copy()
    scores[seen] = -np.inf
    k = min(k, len(scores))
    part = np.argpartition(-scores, k - 1)[:k]
    part = part[np.argsort(-scores[part], kind="stable")]
    return [int(i) for i in part if np.isfinite(scores[i])]


def popularity(data):
    counts = np.asarray(data.x.sum(axis=0)).ravel().astype(np.float64)
    return lambda u: counts


def ease(data, lam):
    g = (data.x.T @ data.x).toarray().astype(np.float64)
    g[np.diag_indices_from(g)] += lam
    p = np.linalg.inv(g)
    b = -p / np.diag(p)
    b[np.diag_indices_from(b)] = 0.0
    return lambda u: data.x[u].toarray().ravel() @ b


def implicit_als(data, regularization, alpha):
    from implicit.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(
        factors=64, regularization=regularization, alpha=alpha, random_state=42
    )
    model.fit(data.x, show_progress=False)
    users = np.asarray(model.user_factors)
    items = np.asarray(model.item_factors)
    return lambda u: items @ users[u]


def item_knn(data, k):
    from implicit.nearest_neighbours import CosineRecommender

    model = CosineRecommender(K=k)
    model.fit(data.x, show_progress=False)
    sim = model.similarity.tocsr()
    return lambda u: np.asarray((data.x[u] @ sim).todense()).ravel()


def lists_of(data, scorer, users, k):
    out = {}
    for u in users:
        ix = data.users[u]
        seen = data.x[ix].indices
        out[u] = [data.item_ids[i] for i in top_k(np.asarray(scorer(ix), dtype=np.float64), seen, k)]
    return out


def metrics(data, test, lists, k):
    n_users = data.x.shape[0]
    counts = np.asarray(data.x.sum(axis=0)).ravel()
    norms = np.sqrt(counts)
    xt = data.x.T.tocsr()
    ndcg = recall = novelty = ild = 0.0
    listed = 0
    covered = set()
    for u, wanted in test.items():
        top = lists.get(u, [])[:k]
        hits = [i in wanted for i in top]
        dcg = sum(1 / math.log2(r + 2) for r, h in enumerate(hits) if h)
        idcg = sum(1 / math.log2(r + 2) for r in range(min(len(wanted), k)))
        ndcg += dcg / idcg
        recall += sum(hits) / len(wanted)
        known = [data.items[i] for i in top if i in data.items]
        covered.update(known)
        for i in known:
            novelty += -math.log2(counts[i] / n_users)
            listed += 1
        if len(known) >= 2:
            v = xt[known]
            sims = (v @ v.T).toarray() / np.outer(norms[known], norms[known])
            pairs = len(known) * (len(known) - 1)
            ild += 1.0 - (sims.sum() - np.trace(sims)) / pairs
    n = max(len(test), 1)
    return {
        "ndcg": float(ndcg / n),
        "recall": float(recall / n),
        "coverage": len(covered) / max(len(data.items), 1),
        "novelty": float(novelty / max(listed, 1)),
        "diversity": float(ild / n),
        "users": len(test),
    }


PEERS = {
    "popularity": (popularity, [()]),
    "implicit ALS (64 factors)": (
        implicit_als,
        [(r, a) for r in (0.01, 0.1, 1.0) for a in (1.0, 10.0, 40.0)],
    ),
    "item-kNN (cosine)": (item_knn, [(k,) for k in (20, 50, 100, 200)]),
    "EASE": (ease, [(lam,) for lam in (10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)]),
}


def choose(rows, protocol, fit, grid, k):
    """The setting of `grid` with the best validation NDCG@k."""
    if len(grid) == 1:
        return grid[0], None
    train, val = held_out(rows, protocol)
    data = Data(train)
    val = {u: w for u, w in val.items() if u in data.users}
    best = None
    for setting in grid:
        scored = metrics(data, val, lists_of(data, fit(data, *setting), val, k), k)["ndcg"]
        if best is None or scored > best[1]:
            best = (setting, scored)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--protocol", choices=["time", "last"], default="time",
                    help="how the validation split is carved out of TRAIN")
    ap.add_argument("--encore", action="append", default=[], metavar="NAME=LISTS.csv")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--json")
    args = ap.parse_args()

    rows = read_rows(args.train)
    data = Data(rows)
    test = {}
    for u, i, _, _ in read_rows(args.test):
        if u in data.users:
            test.setdefault(u, set()).add(i)
    results = []
    for name, (fit, grid) in PEERS.items():
        started = time.time()
        setting, val = choose(rows, args.protocol, fit, grid, args.k)
        scorer = fit(data, *setting)
        m = metrics(data, test, lists_of(data, scorer, test, args.k), args.k)
        m.update(method=name, setting=list(setting),
                 validation_ndcg=None if val is None else float(val),
                 seconds=round(time.time() - started, 1))
        results.append(m)
        print(f"  {name}: {m['ndcg']:.4f} ({m['seconds']} s, setting {setting})", file=sys.stderr)
    for spec in args.encore:
        name, path = spec.split("=", 1)
        lists = {}
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                lists.setdefault(r["user_id"], []).append((int(r["rank"]), r["item_id"]))
        lists = {u: [i for _, i in sorted(v)] for u, v in lists.items()}
        m = metrics(data, test, lists, args.k)
        m.update(method=name)
        results.append(m)
    k = args.k
    print(f"| method | NDCG@{k} | recall@{k} | coverage | novelty | diversity | setting |")
    print("|---|---|---|---|---|---|---|")
    for m in results:
        print(
            f"| {m['method']} | {m['ndcg']:.4f} | {m['recall']:.4f} | {m['coverage']:.3f} "
            f"| {m['novelty']:.2f} | {m['diversity']:.3f} | {m.get('setting', '')} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
