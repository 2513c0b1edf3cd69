#!/usr/bin/env python3
"""Builds a corpus of odd and broken image files from the test photos, records which of them
Pillow reads, and compares with what graft uses (`graft check`). A measurement, not a test:

    python3 -m venv /tmp/pyenv && /tmp/pyenv/bin/pip install pillow
    /tmp/pyenv/bin/python scripts/odd-files.py /tmp/odd        # writes /tmp/odd/* and a report

Needs `cargo build --release -p graft-cli` (the report runs target/release/graft check).
"""
import io
import json
import os
import random
import struct
import subprocess
import sys
import zlib
from pathlib import Path

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT / "data" / "photos"


def photos(n):
    files = sorted(p for c in sorted(PHOTOS.iterdir()) if c.is_dir() for p in sorted(c.glob("*.png")))
    random.Random(1).shuffle(files)
    out = []
    for f in files[:n]:
        im = Image.open(f)
        im.load()
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        out.append((f.stem, Image.alpha_composite(white, rgba).convert("RGB"), rgba))
    return out


def save(img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def png_header(w, h, idat=True):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    if idat:
        out += chunk(b"IDAT", zlib.compress(b"\x00" * 4096))
    return out + chunk(b"IEND", b"")


def corpus():
    files = {}
    pics = photos(24)
    rng = random.Random(7)
    for i, (stem, rgb, rgba) in enumerate(pics):
        small = rgb.copy()
        small.thumbnail((320, 320))
        sa = rgba.copy()
        sa.thumbnail((320, 320))
        k = f"{i:02d}-{stem[:20]}"
        # Formats Pillow writes.
        files[f"{k}.jpg"] = save(small, "JPEG", quality=90)
        files[f"{k}-progressive.jpg"] = save(small, "JPEG", quality=80, progressive=True)
        files[f"{k}-grey.jpg"] = save(small.convert("L"), "JPEG")
        files[f"{k}-cmyk.jpg"] = save(small.convert("CMYK"), "JPEG")
        files[f"{k}-q1.jpg"] = save(small, "JPEG", quality=1)
        files[f"{k}.png"] = save(sa, "PNG")
        files[f"{k}-16bit.png"] = save(small.convert("I;16"), "PNG")
        files[f"{k}-palette.png"] = save(sa.convert("P", palette=Image.ADAPTIVE), "PNG")
        files[f"{k}-1bit.png"] = save(small.convert("1"), "PNG")
        files[f"{k}-la.png"] = save(sa.convert("LA"), "PNG")
        files[f"{k}.gif"] = save(small.convert("P"), "GIF")
        frames = [small, ImageOps.mirror(small), ImageOps.flip(small)]
        files[f"{k}-animated.gif"] = save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
        files[f"{k}.bmp"] = save(small, "BMP")
        files[f"{k}-8bit.bmp"] = save(small.convert("P"), "BMP")
        files[f"{k}.tiff"] = save(small, "TIFF")
        files[f"{k}-lzw.tif"] = save(small, "TIFF", compression="tiff_lzw")
        files[f"{k}-deflate.tif"] = save(small, "TIFF", compression="tiff_adobe_deflate")
        files[f"{k}-rgba.tif"] = save(sa, "TIFF")
        files[f"{k}.tga"] = save(small, "TGA")
        files[f"{k}-rle.tga"] = save(sa, "TGA", compression="tga_rle")
        files[f"{k}.ppm"] = save(small, "PPM")
        files[f"{k}.pgm"] = save(small.convert("L"), "PPM")
        files[f"{k}.ico"] = save(sa.resize((64, 64)), "ICO", sizes=[(64, 64)])
        files[f"{k}.webp"] = save(small, "WEBP", quality=80)
        files[f"{k}-lossless.webp"] = save(sa, "WEBP", lossless=True)
        files[f"{k}.pcx"] = save(small, "PCX")
        files[f"{k}.sgi"] = save(small, "SGI")
        for fmt, ext in [("JPEG2000", "jp2"), ("AVIF", "avif"), ("QOI", "qoi"), ("DDS", "dds"), ("XBM", "xbm")]:
            try:
                img = small.convert("1") if fmt == "XBM" else (sa if fmt == "DDS" else small)
                files[f"{k}.{ext}"] = save(img, fmt)
            except Exception:
                pass
        # EXIF orientation.
        exif = Image.Exif()
        exif[0x0112] = 1 + i % 8
        files[f"{k}-exif{1 + i % 8}.jpg"] = save(small, "JPEG", exif=exif.tobytes())
        # Broken copies.
        jpg = files[f"{k}.jpg"]
        for frac in (0.05, 0.33, 0.9, 0.99):
            files[f"{k}-cut{int(frac * 100)}.jpg"] = jpg[: int(len(jpg) * frac)]
        png = files[f"{k}.png"]
        files[f"{k}-cut50.png"] = png[: len(png) // 2]
        files[f"{k}-cut50.gif"] = files[f"{k}.gif"][: len(files[f"{k}.gif"]) // 2]
        files[f"{k}-cut50.webp"] = files[f"{k}.webp"][: len(files[f"{k}.webp"]) // 2]
        files[f"{k}-cut50.tif"] = files[f"{k}.tiff"][: len(files[f"{k}.tiff"]) // 2]
        flipped = bytearray(jpg)
        for _ in range(20):
            pos = rng.randrange(len(flipped) // 4, len(flipped))
            flipped[pos] ^= 0xFF
        files[f"{k}-bitflips.jpg"] = bytes(flipped)
        files[f"{k}-trailing.jpg"] = jpg + b"\x00trailing garbage" * 10
    # Whole-file oddities.
    files["empty.jpg"] = b""
    files["text-named.jpg"] = b"this is a note, not a photo\n" * 20
    files["page.png"] = b"<!doctype html><html><body>404</body></html>"
    files["random.bin"] = bytes(random.Random(3).randbytes(5000))
    files["drawing.svg"] = b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><circle cx="32" cy="32" r="20" fill="red"/></svg>'
    files["bomb-100000.png"] = png_header(100_000, 100_000)
    files["bomb-header-only.png"] = png_header(60_000, 60_000, idat=False)
    files["huge-20000.png"] = save(Image.new("1", (20_000, 20_000)), "PNG")
    files["strip-12000x1.png"] = save(Image.new("RGB", (12_000, 1), "red"), "PNG")
    files["strip-1x12000.png"] = save(Image.new("RGB", (1, 12_000), "red"), "PNG")
    files["strip-12000x40.png"] = save(Image.new("RGB", (12_000, 40), "red"), "PNG")
    files["panorama-4000x300.jpg"] = save(Image.new("RGB", (4000, 300), "blue"), "JPEG")
    files["tiny-1x1.png"] = save(Image.new("RGB", (1, 1), "red"), "PNG")
    files["tiny-4x4.gif"] = save(Image.new("P", (4, 4)), "GIF")
    return files


def pillow_reads(data):
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
        return True
    except Exception:
        return False


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/odd")
    out.mkdir(parents=True, exist_ok=True)
    Image.MAX_IMAGE_PIXELS = 60_000_000
    files = corpus()
    pillow = {}
    for name, data in files.items():
        (out / name).write_bytes(data)
        pillow[name] = pillow_reads(data)
    graft = os.environ.get("GRAFT_BIN") or ROOT / os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/graft/target")) / "release/graft"
    report = json.loads(subprocess.run([str(graft), "check", str(out), "--json", "--verbose"], capture_output=True, text=True, check=False).stdout)
    refused = {n: r for r, names in report["refused_files"].items() for n in names}
    by_pillow = {"pillow reads, graft uses": 0, "pillow reads, graft refuses": [], "pillow refuses, graft uses": [], "both refuse": 0}
    for name, ok in pillow.items():
        used = name not in refused and name not in report["crashed"]
        if ok and used:
            by_pillow["pillow reads, graft uses"] += 1
        elif ok:
            by_pillow["pillow reads, graft refuses"].append(f"{name} ({refused.get(name, 'crashed')})")
        elif used:
            by_pillow["pillow refuses, graft uses"].append(name)
        else:
            by_pillow["both refuse"] += 1
    print(json.dumps({"files": len(files), "graft": {k: v for k, v in report.items() if k != "refused_files"}, "vs_pillow": by_pillow}, indent=2))


if __name__ == "__main__":
    main()
