"""Implicit ALS on Spark: the feedback archive in, an Encore model version out.

For data that outgrows `encore train` on one machine. Reads the archive that Firehose (or
`encore consume --archive`) writes -- gzip JSON lines of feedback events under
YYYY/MM/DD/HH/ -- counts each (user_id, event_id) once, turns events into implicit ratings
with the same values as `encore train` (finished 1, stopped after 30 s 0.5, liked 3,
skipped -1, disliked -3; starts and failures say nothing), fits MLlib's ALS with implicit
preferences (negative sums are evidence against: preference 0 with their confidence), and
writes the open model format Encore serves:

    OUT/versions/<version>/items.txt                  one item id per row
    OUT/versions/<version>/item_factors.safetensors   F32 "item_factors" [items, dim]
    OUT/versions/<version>/item_factors.ivf           the ANN index, by `encore model index`
    OUT/versions/<version>/model.json                 written last

The index is what "more like this" searches the whole catalog with. It is built by the
encore binary (--encore, or `encore` on the PATH) before model.json is written, since
servers load a version once; without one the version has no index, and servers search each
seed's neighbourhood only and log a warning.

OUT is a directory, or s3://BUCKET/PREFIX (uploaded with boto3, model.json last; on EMR the
archive is read through s3://). Then `encore model promote VERSION --models OUT`, or let
servers that follow no pointer pick the newest.

    spark-submit infra/spark/train_als.py --archive s3://B/feedback --out s3://B/models
    python infra/spark/train_als.py --archive ./archive --out ./models --master 'local[2]'

The safetensors file is written by hand (an 8-byte header length, a JSON header, the raw
little-endian floats): the format is that small, and it spares the job a dependency.
"""

import argparse
import datetime as dt
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

# What a feedback event says of the listener and the track (encore's offline::train::event_value).
EVENT_VALUES = {
    "play_finished": 1.0,
    "stopped": 0.5,
    "liked": 3.0,
    "skipped": -1.0,
    "disliked": -3.0,
}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archive", required=True, help="the feedback archive: a directory or s3://BUCKET/PREFIX")
    p.add_argument("--out", required=True, help="the models location: a directory or s3://BUCKET/PREFIX")
    p.add_argument("--version", help="the version name (default: als-spark-<time>-<hex>)")
    p.add_argument("--factors", type=int, default=64, help="embedding dimensions (default 64)")
    p.add_argument("--iterations", type=int, default=15, help="ALS sweeps (default 15)")
    p.add_argument("--regularization", type=float, default=0.05, help="L2 weight (default 0.05)")
    p.add_argument("--alpha", type=float, default=20.0, help="confidence scale (default 20)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--master", help="Spark master for a run outside spark-submit, e.g. local[2]")
    p.add_argument(
        "--encore",
        default=shutil.which("encore"),
        help="the encore binary that builds the version's ANN index (default: encore on the PATH)",
    )
    return p.parse_args(argv)


def version_name():
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    return "als-spark-{}-{:04x}".format(now.strftime("%Y%m%dT%H%M%SZ"), random.getrandbits(16)), now


def write_safetensors(path, name, rows, dim):
    """Writes one F32 tensor [len(rows), dim]."""
    import numpy as np

    data = np.asarray(rows, dtype="<f4").reshape(len(rows), dim)
    if not np.isfinite(data).all():
        raise ValueError("factors hold NaN or infinity")
    raw = data.tobytes()
    header = json.dumps(
        {name: {"dtype": "F32", "shape": [len(rows), dim], "data_offsets": [0, len(raw)]}},
        separators=(",", ":"),
    ).encode()
    header += b" " * ((8 - len(header) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
        f.write(raw)


def upload(local_dir, out, version):
    """Uploads the version to s3://BUCKET/PREFIX/versions/<version>/, model.json last."""
    import boto3

    bucket, _, prefix = out[len("s3://"):].partition("/")
    s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3"))
    key = "/".join(p for p in [prefix.strip("/"), "versions", version] if p)
    for name in ["items.txt", "item_factors.safetensors", "item_factors.ivf", "model.json"]:
        if os.path.exists(os.path.join(local_dir, name)):
            s3.upload_file(os.path.join(local_dir, name), bucket, key + "/" + name)


def main(argv):
    args = parse_args(argv)
    from pyspark.sql import SparkSession, functions as F
    from pyspark.ml.recommendation import ALS

    builder = SparkSession.builder.appName("encore-train-als")
    if args.master:
        builder = builder.master(args.master)
    builder = builder.config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
    if args.master and args.master.startswith("local"):
        # A small local run: a few shuffle partitions, not the cluster default of 200.
        builder = builder.config("spark.sql.shuffle.partitions", "4")
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")

    events = (
        spark.read.option("recursiveFileLookup", "true")
        .option("pathGlobFilter", "*.gz")
        .schema("event_id string, user_id string, track_id string, kind string, occurred_at string")
        .json(args.archive)
        .where(F.col("event_id").isNotNull() & F.col("user_id").isNotNull() & F.col("track_id").isNotNull())
    )
    read = events.count()
    events = events.dropDuplicates(["user_id", "event_id"])
    values = F.create_map(*[x for k, v in EVENT_VALUES.items() for x in (F.lit(k), F.lit(v))])
    ratings = (
        events.withColumn("value", values[F.col("kind")])
        .where(F.col("value").isNotNull())
        .groupBy("user_id", "track_id")
        .agg(F.sum("value").alias("rating"))
        .where(F.col("rating") != 0)
    )
    users = ratings.select("user_id").distinct().rdd.map(lambda r: r[0]).zipWithIndex().toDF(["user_id", "user"])
    items = ratings.select("track_id").distinct().rdd.map(lambda r: r[0]).zipWithIndex().toDF(["track_id", "item"])
    data = ratings.join(users, "user_id").join(items, "track_id").select("user", "item", "rating").cache()
    interactions = data.count()
    if interactions == 0:
        print("no usable interactions in the archive", file=sys.stderr)
        return 1
    print(
        "{} events read, {} after counting each event id once, {} interactions".format(
            read, events.count(), interactions
        ),
        file=sys.stderr,
    )

    als = ALS(
        rank=args.factors,
        maxIter=args.iterations,
        regParam=args.regularization,
        alpha=args.alpha,
        implicitPrefs=True,
        userCol="user",
        itemCol="item",
        ratingCol="rating",
        seed=args.seed,
        coldStartStrategy="drop",
    )
    model = als.fit(data)
    factors = model.itemFactors.join(items, model.itemFactors.id == items.item).select("track_id", "features")
    rows = sorted(factors.collect(), key=lambda r: r["track_id"])
    spark.stop()

    version, now = version_name()
    version = args.version or version
    work = tempfile.mkdtemp() if args.out.startswith("s3://") else None
    out_dir = work or os.path.join(args.out, "versions", version)
    if os.path.exists(os.path.join(out_dir, "model.json")):
        print("model version {} already exists in {}".format(version, out_dir), file=sys.stderr)
        return 1
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "items.txt"), "w") as f:
        f.write("".join(r["track_id"] + "\n" for r in rows))
    write_safetensors(
        os.path.join(out_dir, "item_factors.safetensors"),
        "item_factors",
        [list(r["features"]) for r in rows],
        args.factors,
    )
    if args.encore:
        # Before model.json: `encore model index` reads the artifact's shape while there is none.
        subprocess.run([args.encore, "model", "index", out_dir], check=True)
    else:
        print(
            "no encore binary (--encore, or encore on the PATH): the version has no ANN index, "
            "and servers search each seed's neighbourhood for more like this",
            file=sys.stderr,
        )
    manifest = {
        "format": "encore-item-factors",
        "format_version": 1,
        "version": version,
        "created_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "kind": "als-spark",
        "dim": args.factors,
        "items": len(rows),
        "data": {"interactions": interactions, "source": args.archive, "trainer": "spark-mllib-als"},
        "parameters": {
            "factors": args.factors,
            "iterations": args.iterations,
            "regularization": args.regularization,
            "alpha": args.alpha,
        },
        "metrics": {},
    }
    # The manifest last: a directory without one is not a version yet.
    with open(os.path.join(out_dir, "model.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    if work:
        upload(work, args.out, version)
    print("wrote als-spark model {} ({} items x {} factors) to {}".format(version, len(rows), args.factors, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
