"""NDCG@k and recall@k of the `implicit` package's ALS on the same per-user time split as
`encore evaluate`, for comparing Encore's model with a well-tuned reference.

    python benches/implicit_baseline.py INTERACTIONS.csv [--k 10] [--grid]

The split: each user's interactions ordered by timestamp (file order among equals); users
with at least two hold out the latest round(20%) (at least one, never all); held-out items
the user already had in training are dropped. Candidates exclude the user's training items.
Confidence: 1 + alpha * ln(1 + strength), as in Encore. `--grid` tries a small grid of
factors, regularization and alpha and reports the best.
"""

import argparse
import csv
import math
import sys

import numpy as np
import scipy.sparse as sp
from implicit.als import AlternatingLeastSquares


def read(path):
    users, items, rows = {}, {}, []
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        col = {name: i for i, name in enumerate(header)}
        for r in reader:
            u = users.setdefault(r[col["user_id"]], len(users))
            i = items.setdefault(r[col["item_id"]], len(items))
            rating = float(r[col["rating"]]) if "rating" in col and r[col["rating"]] else 1.0
            rows.append((u, i, int(float(r[col["timestamp"]])), rating))
    return len(users), len(items), rows


def split(n_users, rows, fraction=0.2):
    per_user = [[] for _ in range(n_users)]
    for idx, r in enumerate(rows):
        per_user[r[0]].append(idx)
    train, test = [], []
    for u, idxs in enumerate(per_user):
        idxs.sort(key=lambda i: rows[i][2])
        held = min(max(int(math.floor(len(idxs) * fraction + 0.5)), 1), len(idxs) - 1) if len(idxs) >= 2 else 0
        cut = len(idxs) - held
        train.extend(rows[i] for i in idxs[:cut])
        if held:
            seen = {rows[i][1] for i in idxs[:cut]}
            wanted = sorted({rows[i][1] for i in idxs[cut:]} - seen)
            if wanted:
                test.append((u, wanted))
    return train, test


def evaluate(model, user_items, test, k):
    users = np.array([u for u, _ in test])
    ids, _ = model.recommend(users, user_items[users], N=k, filter_already_liked_items=True)
    precision = recall = ndcg = 0.0
    for (u, wanted), top in zip(test, ids):
        wanted = set(wanted)
        hits = [int(i) in wanted for i in top]
        n = sum(hits)
        precision += n / k
        recall += n / len(wanted)
        dcg = sum(1 / math.log2(r + 2) for r, h in enumerate(hits) if h)
        idcg = sum(1 / math.log2(r + 2) for r in range(min(len(wanted), k)))
        ndcg += dcg / idcg
    n = len(test)
    return precision / n, recall / n, ndcg / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("interactions")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--grid", action="store_true")
    args = ap.parse_args()
    n_users, n_items, rows = read(args.interactions)
    train, test = split(n_users, rows)
    grid = [(32, 0.05, 20.0)]
    if args.grid:
        grid = [(f, reg, a) for f in (32, 64, 128) for reg in (0.01, 0.05, 0.1) for a in (5.0, 20.0, 40.0)]
    best = None
    for factors, reg, alpha in grid:
        u = np.array([r[0] for r in train])
        i = np.array([r[1] for r in train])
        strength = sp.csr_matrix((np.array([r[3] for r in train], dtype=np.float32), (u, i)), shape=(n_users, n_items))
        strength.sum_duplicates()
        conf = strength.copy()
        # implicit reads the matrix as the confidence itself (it adds no 1).
        conf.data = (1.0 + alpha * np.log1p(conf.data)).astype(np.float32)
        model = AlternatingLeastSquares(factors=factors, regularization=reg, alpha=1.0, iterations=15, random_state=42)
        model.fit(conf, show_progress=False)
        p, r, n = evaluate(model, strength.tocsr(), test, args.k)
        print(f"implicit ALS factors={factors} regularization={reg} alpha={alpha}: "
              f"precision@{args.k}={p:.4f} recall@{args.k}={r:.4f} ndcg@{args.k}={n:.4f}", file=sys.stderr)
        if best is None or n > best[0]:
            best = (n, r, p, factors, reg, alpha)
    n, r, p, factors, reg, alpha = best
    print(f"best implicit ALS (factors={factors}, regularization={reg}, alpha={alpha}): "
          f"precision@{args.k}={p:.4f} recall@{args.k}={r:.4f} ndcg@{args.k}={n:.4f} over {len(test)} users")


if __name__ == "__main__":
    main()
