#!/usr/bin/python3
"""Generates the portal's 20 stock background photos (portal-assets/backgrounds/bg-01.jpg … bg-20.jpg).

We ship backgrounds we made ourselves, so their origin and licence are clear (CC0, see LICENSE there).
Deterministic: the same script gives the same pictures (fixed seeds, no clock). Each picture is a soft
gradient with one family of geometric shapes (circles, diagonal bands, triangles, hills, rings), rendered
at 1280x800 and saved as a progressive JPEG kept under 60 KB.

Needs Pillow (Debian: python3-pil). Usage: scripts/generate-backgrounds.py [OUTPUT_DIR]
"""

import math
import os
import random
import sys

from PIL import Image, ImageDraw, ImageFilter

WIDTH, HEIGHT = 1280, 800
MAX_BYTES = 60 * 1024

# (top-left colour, bottom-right colour, shape family) for each picture, in order.
PALETTES = [
    ((15, 45, 82), (58, 120, 194), "circles"),
    ((20, 60, 40), (120, 170, 90), "hills"),
    ((70, 20, 60), (220, 110, 90), "bands"),
    ((10, 25, 45), (20, 110, 130), "rings"),
    ((90, 50, 20), (240, 180, 90), "triangles"),
    ((30, 30, 36), (96, 100, 112), "bands"),
    ((12, 70, 90), (130, 210, 200), "circles"),
    ((60, 30, 90), (150, 110, 210), "triangles"),
    ((110, 20, 30), (240, 120, 80), "hills"),
    ((5, 35, 70), (240, 160, 120), "hills"),
    ((40, 60, 20), (200, 210, 120), "rings"),
    ((25, 25, 70), (80, 160, 230), "triangles"),
    ((80, 80, 90), (210, 215, 225), "circles"),
    ((20, 80, 70), (240, 220, 150), "bands"),
    ((50, 10, 40), (110, 60, 140), "rings"),
    ((10, 50, 110), (120, 200, 240), "bands"),
    ((70, 45, 30), (190, 150, 120), "circles"),
    ((15, 20, 30), (60, 80, 120), "triangles"),
    ((100, 60, 120), (250, 200, 170), "hills"),
    ((0, 60, 60), (60, 170, 120), "rings"),
]


def mix(a, b, t):
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))


def gradient(start, end):
    """A diagonal gradient, built small and scaled up (smooth, and quick)."""
    small = Image.new("RGB", (64, 40))
    pixels = small.load()
    for y in range(40):
        for x in range(64):
            pixels[x, y] = mix(start, end, (x / 63 + y / 39) / 2)
    return small.resize((WIDTH, HEIGHT), Image.BICUBIC)


def overlay(image, draw_shapes, rng):
    layer = Image.new("RGBA", (WIDTH, HEIGHT), (0, 0, 0, 0))
    draw_shapes(ImageDraw.Draw(layer), rng)
    layer = layer.filter(ImageFilter.GaussianBlur(6))
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")


def light(rng, low=18, high=60):
    shade = rng.choice([255, 0])
    return (shade, shade, shade, rng.randint(low, high))


def circles(draw, rng):
    for _ in range(14):
        r = rng.randint(40, 260)
        x, y = rng.randint(-100, WIDTH + 100), rng.randint(-100, HEIGHT + 100)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=light(rng))


def rings(draw, rng):
    cx, cy = rng.randint(0, WIDTH), rng.randint(0, HEIGHT)
    for i in range(12):
        r = 80 + i * rng.randint(50, 80)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=light(rng, 25, 70), width=rng.randint(6, 22))


def bands(draw, rng):
    for _ in range(9):
        x = rng.randint(-WIDTH, WIDTH)
        w = rng.randint(60, 220)
        draw.polygon([(x, HEIGHT), (x + w, HEIGHT), (x + w + HEIGHT, 0), (x + HEIGHT, 0)], fill=light(rng))


def triangles(draw, rng):
    for _ in range(16):
        x, y = rng.randint(0, WIDTH), rng.randint(0, HEIGHT)
        s = rng.randint(80, 320)
        a = rng.random() * math.tau
        points = [(x + s * math.cos(a + k * math.tau / 3), y + s * math.sin(a + k * math.tau / 3)) for k in range(3)]
        draw.polygon(points, fill=light(rng))


def hills(draw, rng):
    for layer in range(4):
        base = HEIGHT * (0.45 + 0.15 * layer)
        amp, freq, phase = rng.randint(30, 90), rng.uniform(0.002, 0.006), rng.random() * math.tau
        points = [(x, base + amp * math.sin(x * freq + phase)) for x in range(0, WIDTH + 40, 40)]
        draw.polygon(points + [(WIDTH, HEIGHT), (0, HEIGHT)], fill=(0, 0, 0, 40 + 20 * layer))


SHAPES = {"circles": circles, "rings": rings, "bands": bands, "triangles": triangles, "hills": hills}


def save_small(image, path):
    for quality in (82, 75, 68, 60, 52, 45):
        image.save(path, "JPEG", quality=quality, optimize=True, progressive=True)
        if os.path.getsize(path) <= MAX_BYTES:
            return
    raise SystemExit(f"{path} stays above {MAX_BYTES} bytes")


def main():
    default = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "portal-assets", "backgrounds")
    out = sys.argv[1] if len(sys.argv) > 1 else default
    os.makedirs(out, exist_ok=True)
    for number, (start, end, shape) in enumerate(PALETTES, start=1):
        rng = random.Random(number * 7919)
        image = overlay(gradient(start, end), SHAPES[shape], rng)
        path = os.path.join(out, f"bg-{number:02}.jpg")
        save_small(image, path)
        print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
