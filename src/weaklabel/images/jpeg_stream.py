"""Pillow's verdict on a JPEG without decoding it, when its markers leave no doubt.

What makes Pillow reject a JPEG is narrow. libjpeg treats damaged entropy-coded data as
a warning (a bad Huffman code, a scan that ends early, bytes before a marker) and Pillow
ignores warnings, so such a file loads; what is fatal is the frame around the data: a
file cut short, a missing or bad SOF, DHT, DQT or SOS segment, an unknown marker, a
marker where none belongs. :func:`jpeg_well_formed` walks that frame (every segment, and
the markers inside each scan's entropy-coded data, found by one regular-expression scan
in C) and says True only when everything is in the shape libjpeg decodes without a
fatal error: then Pillow loads the file whatever its pixels are. Anything unusual or
damaged gets False, which means "not sure", never "corrupt": the caller decodes.

The tests and ``bench/bench_images.py --only jpeg-damage`` hold this against Pillow on
thousands of damaged files (cut at every kind of offset, bytes flipped in the headers
and in the entropy data, markers replaced, removed or added; baseline and progressive,
with and without restart markers): wherever this says True, Pillow loads the file.
"""

from __future__ import annotations

import re

_MARK = re.compile(rb"\xff[^\x00]")
"""Inside entropy-coded data a 0xFF byte is followed by 0x00 (stuffing), by a restart
marker, or starts the marker that ends the scan."""

_MAX_SIDE = 65500  # libjpeg's JPEG_MAX_DIMENSION
_MAX_BLOCKS_IN_MCU = 10  # libjpeg's D_MAX_BLOCKS_IN_MCU


class _Frame:
    """The SOF segment and what the scans have filled in so far."""

    def __init__(self, progressive: bool, width: int, height: int,
                 comps: list[tuple[int, int, int]]) -> None:
        self.progressive = progressive
        self.width, self.height = width, height
        self.ids = [c for c, _, _ in comps]
        self.sampling = [(h, v) for _, h, v in comps]
        self.hmax = max(h for h, _ in self.sampling)
        self.vmax = max(v for _, v in self.sampling)
        # per component, per coefficient: the bit position it is known to (-1: not yet)
        self.bits = [[-1] * 64 for _ in comps]

    def mcus(self, comps: list[int]) -> int:
        """MCUs in a scan of these component indexes (libjpeg's arithmetic)."""
        if len(comps) == 1:
            h, v = self.sampling[comps[0]]
            return _ceil(self.width * h, self.hmax * 8) * _ceil(self.height * v, self.vmax * 8)
        return _ceil(self.width, self.hmax * 8) * _ceil(self.height, self.vmax * 8)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _dqt(body: bytes, tables: set[int]) -> bool:
    i, n = 0, len(body)
    if n == 0:
        return False
    while i < n:
        pq, tq = body[i] >> 4, body[i] & 15
        if pq > 1 or tq > 3:
            return False
        size = 64 << pq
        values = body[i + 1:i + 1 + size]
        if len(values) != size:
            return False
        if pq == 0:
            if 0 in values:
                return False
        elif any(values[k] == 0 and values[k + 1] == 0 for k in range(0, size, 2)):
            return False
        tables.add(tq)
        i += 1 + size
    return True


def _dht(body: bytes, dc: set[int], ac: set[int]) -> bool:
    i, n = 0, len(body)
    if n == 0:
        return False
    while i < n:
        if i + 17 > n:
            return False
        tc, th = body[i] >> 4, body[i] & 15
        if tc > 1 or th > 3:
            return False
        counts = body[i + 1:i + 17]
        total = sum(counts)
        if total == 0 or total > 256 or i + 17 + total > n:
            return False
        code = 0
        for length, count in enumerate(counts, 1):
            code += count
            if code >= 1 << length:  # libjpeg's "Bogus Huffman table definition"
                return False
            code <<= 1
        if tc == 0 and max(body[i + 17:i + 17 + total]) > 11:
            return False  # a DC difference of more than 11 bits: not from an 8-bit image
        (dc if tc == 0 else ac).add(th)
        i += 17 + total
    return True


def _sof(marker: int, body: bytes, quant: set[int]) -> _Frame | None:
    if len(body) < 6:
        return None
    precision, nf = body[0], body[5]
    height, width = (body[1] << 8) | body[2], (body[3] << 8) | body[4]
    if precision != 8 or nf not in (1, 3, 4) or len(body) != 6 + 3 * nf:
        return None
    if not (0 < width <= _MAX_SIDE and 0 < height <= _MAX_SIDE):
        return None
    comps = []
    for k in range(nf):
        cid, hv, tq = body[6 + 3 * k:9 + 3 * k]
        h, v = hv >> 4, hv & 15
        if h not in (1, 2) or v not in (1, 2) or tq not in quant:
            return None
        comps.append((cid, h, v))
    if len({c for c, _, _ in comps}) != nf:
        return None
    return _Frame(marker == 0xC2, width, height, comps)


def _sos(body: bytes, frame: _Frame, dc: set[int], ac: set[int]) -> list[int] | None:
    """The scan's component indexes, or None when libjpeg could object to it."""
    if not body:
        return None
    ns = body[0]
    if not 1 <= ns <= 4 or len(body) != 4 + 2 * ns:
        return None
    ss, se, approx = body[1 + 2 * ns], body[2 + 2 * ns], body[3 + 2 * ns]
    ah, al = approx >> 4, approx & 15
    comps: list[int] = []
    for k in range(ns):
        cid, tables = body[1 + 2 * k], body[2 + 2 * k]
        if cid not in frame.ids:
            return None
        ci = frame.ids.index(cid)
        if comps and ci <= comps[-1]:
            return None
        td, ta = tables >> 4, tables & 15
        if frame.progressive:
            if (ss == 0 and ah == 0 and td not in dc) or (ss > 0 and ta not in ac):
                return None
        elif td not in dc or ta not in ac:
            return None
        comps.append(ci)
    if ns > 1 and sum(frame.sampling[c][0] * frame.sampling[c][1]
                      for c in comps) > _MAX_BLOCKS_IN_MCU:
        return None
    if not frame.progressive:
        return comps if (ss, se, ah, al) == (0, 63, 0, 0) and ns == len(frame.ids) else None
    if ss == 0:
        if se != 0:
            return None
    elif ss > se or se > 63 or ns != 1:
        return None
    if (ah and al != ah - 1) or al > 13:
        return None
    # libjpeg only warns about a progression that skips or repeats bits; not sure, decode
    for ci in comps:
        bits = frame.bits[ci]
        if ss > 0 and bits[0] < 0:
            return None
        for k in range(ss, se + 1):
            if bits[k] != (ah if ah else -1) and not (ah == 0 and bits[k] < 0):
                return None
        bits[ss:se + 1] = [al] * (se + 1 - ss)
    return comps


def _scan_end(data: bytes, start: int, restart: int, mcus: int) -> int:
    """Where the scan's entropy-coded data ends (its next marker), or -1 when its
    restart markers are not exactly the ones libjpeg expects."""
    expected = 0 if restart == 0 else (mcus - 1) // restart
    seen = 0
    for m in _MARK.finditer(data, start):
        code = data[m.start() + 1]
        if 0xD0 <= code <= 0xD7:
            if seen >= expected or code != 0xD0 + (seen & 7):
                return -1
            seen += 1
            continue
        return m.start() if seen == expected else -1
    return -1


def jpeg_well_formed(data: bytes) -> bool:
    """True when Pillow loads this JPEG for certain, from its markers alone.

    Every segment is checked as libjpeg reads it: SOI first; APPn and COM skipped;
    DQT, DHT (canonical codes that fit their lengths) and DRI well formed; one baseline,
    extended or progressive 8-bit SOF whose components use defined quantisation tables;
    each SOS naming frame components and defined Huffman tables, a progressive scan
    continuing the bits of the ones before it; each scan's data holding exactly its
    restart markers, in order; EOI as the file's last two bytes. False is "not sure"
    (arithmetic coding, 12 bits, trailing bytes after EOI, any damage): decode it.
    """
    n = len(data)
    if data[:2] != b"\xff\xd8":
        return False
    quant: set[int] = set()
    dc: set[int] = set()
    ac: set[int] = set()
    frame: _Frame | None = None
    restart = scans = 0
    pos = 2
    while pos + 2 <= n:
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xD9:
            return frame is not None and scans > 0 and pos + 2 == n
        if pos + 4 > n:
            return False
        end = pos + 2 + ((data[pos + 2] << 8) | data[pos + 3])
        if end < pos + 4 or end > n:
            return False
        body = data[pos + 4:end]
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            pass
        elif marker == 0xDB:
            if not _dqt(body, quant):
                return False
        elif marker == 0xC4:
            if not _dht(body, dc, ac):
                return False
        elif marker == 0xDD:
            if len(body) != 2:
                return False
            restart = (body[0] << 8) | body[1]
        elif marker in (0xC0, 0xC1, 0xC2):
            if frame is not None:
                return False
            frame = _sof(marker, body, quant)
            if frame is None:
                return False
        elif marker == 0xDA:
            if frame is None or (scans and not frame.progressive):
                return False
            comps = _sos(body, frame, dc, ac)
            if comps is None:
                return False
            end = _scan_end(data, end, restart, frame.mcus(comps))
            if end < 0:
                return False
            scans += 1
        else:
            return False
        pos = end
    return False
