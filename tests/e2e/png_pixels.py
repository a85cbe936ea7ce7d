#!/usr/bin/env python3
"""Reads an 8-bit RGB/RGBA PNG (what Chromium writes) with the standard library
and checks a screenshot of the status page: it must hold the live and the
missing colour, and on some row a missing run with live pixels on both sides
(a gap between two covered spans).
usage: png_pixels.py FILE.png
"""
import struct
import sys
import zlib

LIVE = (0x2E, 0x9D, 0x5B)
MISSING = (0xD9, 0x30, 0x25)


def read_png(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit(f"{path}: not a PNG")
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
            if depth != 8 or ctype not in (2, 6):
                sys.exit(f"{path}: unsupported PNG (depth {depth}, colour type {ctype})")
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def near(px, colour):
    return all(abs(px[i] - colour[i]) <= 12 for i in range(3))


def main():
    width, height, bpp, rows = read_png(sys.argv[1])
    live = missing = 0
    gap_rows = 0
    for line in rows:
        kinds = []
        for x in range(width):
            px = line[x * bpp:x * bpp + 3]
            k = "L" if near(px, LIVE) else "M" if near(px, MISSING) else "."
            live += k == "L"
            missing += k == "M"
            kinds.append(k)
        s = "".join(kinds)
        # a missing run with live pixels on both sides (ignoring antialiasing)
        first_l, last_l = s.find("L"), s.rfind("L")
        if first_l >= 0 and "M" in s[first_l:last_l]:
            gap_rows += 1
    print(f"screenshot {width}x{height}: live_px={live} missing_px={missing} rows_with_gap_between_live={gap_rows}")
    sys.exit(0 if live > 0 and missing > 0 and gap_rows > 0 else 1)


if __name__ == "__main__":
    main()
