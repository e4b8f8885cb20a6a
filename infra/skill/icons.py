#!/usr/bin/env python3
"""Draws the skill's icons: the small (108 x 108) and large (512 x 512) PNGs the skill
manifest references, into the skill package's assets. Standard library only, so it runs
anywhere python3 does:

    python3 infra/skill/icons.py [--out intents/skill-package/assets/images]

The design: a deep blue to violet square (Alexa rounds the corners itself) with
a white play triangle and two sound arcs. Each pixel is supersampled 4 x 4 so the edges
are smooth at both sizes.
"""
import argparse
import math
import os
import struct
import zlib

SIZES = {"small": 108, "large": 512}


def colour_at(x, y):
    """The colour of the point (x, y) of the unit square, as (r, g, b) floats 0..1."""
    # Background: a diagonal gradient from deep blue to violet.
    t = (x + y) / 2
    bg = (0.10 + 0.35 * t, 0.12 + 0.05 * t, 0.45 + 0.25 * t)
    white = (1.0, 1.0, 1.0)
    # A play triangle, left of centre.
    ax, ay, bx, by, cx, cy = 0.30, 0.28, 0.30, 0.72, 0.58, 0.50
    def side(px, py, qx, qy, rx, ry):
        return (qx - px) * (ry - py) - (qy - py) * (rx - px)
    d1 = side(ax, ay, bx, by, x, y)
    d2 = side(bx, by, cx, cy, x, y)
    d3 = side(cx, cy, ax, ay, x, y)
    if (d1 <= 0 and d2 <= 0 and d3 <= 0) or (d1 >= 0 and d2 >= 0 and d3 >= 0):
        return white
    # Two sound arcs to its right.
    r = math.hypot(x - 0.50, y - 0.50)
    angle = abs(math.atan2(y - 0.50, x - 0.50))
    if x > 0.5 and angle < math.radians(40):
        for radius in (0.20, 0.30):
            if abs(r - radius) < 0.025:
                return white
    return bg


def draw(size, samples=4):
    rows = []
    for py in range(size):
        row = bytearray([0])  # filter type: none
        for px in range(size):
            acc = [0.0, 0.0, 0.0]
            for sy in range(samples):
                for sx in range(samples):
                    c = colour_at((px + (sx + 0.5) / samples) / size, (py + (sy + 0.5) / samples) / size)
                    for k in range(3):
                        acc[k] += c[k]
            row.extend(int(round(255 * a / samples**2)) for a in acc)
        rows.append(bytes(row))
    return png(size, size, b"".join(rows))


def png(width, height, raw):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="intents/skill-package/assets/images")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, size in SIZES.items():
        path = os.path.join(args.out, f"encore-{name}-{size}.png")
        with open(path, "wb") as f:
            f.write(draw(size))
        print(f"wrote {path} ({size} x {size})")


if __name__ == "__main__":
    main()
