"""Measures the drill page's timeline in a PNG screenshot, with the standard library
only. Arguments: the PNG, then name=#rrggbb colours. Prints JSON: per colour the
widest horizontal run (length, row, first column), the tallest vertical run (height,
column, first row) and the pixel count."""
import json, struct, sys, zlib


def decode(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
            n = 4 if colour == 6 else 3
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * n
    rows, prev, i = [], [0] * stride, 0
    for _ in range(height):
        f, line = raw[i], list(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        if f == 1:
            for x in range(n, stride):
                line[x] = (line[x] + line[x - n]) & 255
        elif f == 2:
            line = [(a + b) & 255 for a, b in zip(line, prev)]
        elif f == 3:
            for x in range(stride):
                line[x] = (line[x] + ((line[x - n] if x >= n else 0) + prev[x]) // 2) & 255
        elif f == 4:
            for x in range(stride):
                a = line[x - n] if x >= n else 0
                b = prev[x]
                c = prev[x - n] if x >= n else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([(line[x] << 16) | (line[x + 1] << 8) | line[x + 2] for x in range(0, stride, n)])
        prev = line
    return width, height, rows


width, height, rows = decode(sys.argv[1])
out = {}
for arg in sys.argv[2:]:
    name, h = arg.split("=")
    c = int(h[1:], 16)
    mask = [[p == c for p in row] for row in rows]
    wide, tall, count = (0, -1, -1), (0, -1, -1), 0
    for y, row in enumerate(mask):
        run = 0
        for x, hit in enumerate(row):
            run = run + 1 if hit else 0
            if run > wide[0]:
                wide = (run, y, x - run + 1)
        count += sum(row)
    for x in range(width):
        run = 0
        for y in range(height):
            run = run + 1 if mask[y][x] else 0
            if run > tall[0]:
                tall = (run, x, y - run + 1)
    out[name] = {"wide": wide[0], "row": wide[1], "left": wide[2],
                 "tall": tall[0], "column": tall[1], "top": tall[2], "count": count}
print(json.dumps(out))
