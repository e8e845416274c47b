"""Crafted files for the loader tests: memory bombs (tiny files that declare huge sizes), malformed files that
make library readers raise all kinds of exceptions, and files carrying a canary string that must never appear in
an error message. Every builder returns ``{file name: (writer, words the one-line reason must contain)}``; a
writer is the file's bytes or a function that writes the (large) file itself."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

CANARY = "CANARY7f3kq"  # file contents that must never reach a message or a record
Writer = bytes | Callable[[Path], None]


# ----------------------------------------------------------------------------------------------- pickles
MULTIARRAY = "numpy._core.multiarray"
MARK, TUPLE, REDUCE, BUILD, STOP = b"(", b"t", b"R", b"b", b"."
FALSE, TRUE, EMPTY_LIST = b"\x89", b"\x88", b"]"


def glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def integer(n: int) -> bytes:
    return b"J" + struct.pack("<i", n)


def text(s: str) -> bytes:
    data = s.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def raw(data: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(data)) + data


def tup(*items: bytes) -> bytes:
    return MARK + b"".join(items) + TUPLE


def dtype(spec: str) -> bytes:
    return glob("numpy", "dtype") + tup(text(spec), FALSE, TRUE) + REDUCE


def reconstruct(shape: tuple[int, ...], spec: bytes = b"C\x01b") -> bytes:
    """``_reconstruct(ndarray, shape, b'b')``: what NumPy's own pickles start every array with."""
    return (
        glob(MULTIARRAY, "_reconstruct")
        + tup(glob("numpy", "ndarray"), tup(*map(integer, shape)), spec)
        + REDUCE
    )


def array_state(shape: tuple[int, ...], spec: str, data: bytes) -> bytes:
    """``reconstruct((0,))`` followed by BUILD with ``(1, shape, dtype, False, data)``."""
    return reconstruct((0,)) + tup(integer(1), tup(*map(integer, shape)), dtype(spec), FALSE, data) + BUILD


def pickle_program(*ops: bytes) -> bytes:
    return b"\x80\x03" + b"".join(ops) + STOP


def npy_header(descr: object, shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def object_npy(program: bytes, shape: tuple[int, ...] = (2,)) -> bytes:
    """An object-dtype .npy whose pickle is ``program``."""
    return npy_header("|O", shape) + program


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=array.dtype == object)
    return buffer.getvalue()


def object_array(*items: object) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        out[i] = item
    return out


IMAGE = np.arange(256, dtype=np.float64).reshape(16, 16)


# ----------------------------------------------------------------------------------------------- zips
def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _patch_central(data: bytes, offset: int, fmt: str, value: int, local_offset: int | None = None) -> bytes:
    """Overwrite a field of the first central-directory entry (and of the first local header)."""
    out = bytearray(data)
    at = out.index(b"PK\x01\x02")
    struct.pack_into(fmt, out, at + offset, value)
    if local_offset is not None:
        struct.pack_into(fmt, out, local_offset, value)
    return bytes(out)


def _zip_directory_bomb(path: Path) -> None:
    """65,535 central-directory entries (3 MB) that zipfile would turn into 65,535 objects."""
    entry = struct.pack(
        "<4s4B4HL2L5HLL", b"PK\x01\x02", 20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0
    )
    directory = (entry + b"a") * 0xFFFF
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, len(directory), 0, 0)
    path.write_bytes(directory + end)


def _inflating_member(member: str, declared_extra: int | None) -> Callable[[Path], None]:
    """An .npz whose ``member`` is a valid small .npy followed by 256 MiB of zeros (1/1000 of that deflated).
    With ``declared_extra``, the zip directory lies: it declares only the array plus that many bytes."""

    def write(path: Path) -> None:
        head = npy(np.array(1e-23) if member == "axion_mass.npy" else IMAGE)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            with zf.open(member, "w") as f:
                f.write(head)
                zeros = bytes(1 << 24)
                for _ in range(16):
                    f.write(zeros)
            if member != "image.npy":
                zf.writestr("image.npy", npy(IMAGE))
        if declared_extra is not None:  # size and CRC of the first member's first bytes, in both headers
            declared = head + bytes(declared_extra)
            data = _patch_central(path.read_bytes(), 24, "<L", len(declared), 22)
            path.write_bytes(_patch_central(data, 16, "<L", zlib.crc32(declared), 14))

    return write


# ----------------------------------------------------------------------------------------------- FITS / images
def fits_header(cards: list[tuple[str, object]], filler: int = 0, end: bool = True) -> bytes:
    """A FITS header of ``cards`` (values written as FITS does) plus ``filler`` COMMENT cards, then END (unless
    not ``end``), padded to 2880-byte blocks."""
    lines = []
    for key, value in cards:
        if isinstance(value, bool):
            shown = "T" if value else "F"
        elif isinstance(value, str):
            shown = f"'{value}'"
        else:
            shown = str(value)
        lines.append(f"{key:<8}= {shown:>20}".ljust(80))
    lines += [f"COMMENT {CANARY}".ljust(80)] * filler
    if end:
        lines.append("END".ljust(80))
    data = "".join(lines).encode()
    return data + b" " * (-len(data) % 2880)


def _image_cards(*shape: int, bitpix: object = -32) -> list[tuple[str, object]]:
    cards: list[tuple[str, object]] = [("SIMPLE", True), ("BITPIX", bitpix), ("NAXIS", len(shape))]
    cards += [(f"NAXIS{i + 1}", n) for i, n in enumerate(reversed(shape))]
    return cards


def _fits_header_bomb(path: Path) -> None:
    """50 MB of header cards (astropy would hold ~8x that as Card objects)."""
    with open(path, "wb") as f:
        f.write(fits_header(_image_cards(8, 8), filler=50 * 1024 * 1024 // 80))


def _fits_gzip_bomb(path: Path) -> None:
    """gzip of an empty primary HDU and a 100 MB table of zeros (100 kB compressed): the reader streams past it."""
    import gzip

    table = fits_header(
        [("XTENSION", "BINTABLE"), ("BITPIX", 8), ("NAXIS", 2), ("NAXIS1", 1000), ("NAXIS2", 100_000),
         ("PCOUNT", 0), ("GCOUNT", 1), ("TFIELDS", 1), ("TFORM1", "1000B")]
    )  # fmt: skip
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(fits_header([("SIMPLE", True), ("BITPIX", 8), ("NAXIS", 0), ("EXTEND", True)]) + table)
        zeros = bytes(1000 * 1000)
        for _ in range(100):
            f.write(zeros)
        f.write(bytes(-100_000_000 % 2880))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` 8-bit grey pixels (its data is a few bytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _png_chunk(b"IEND", b"")
    )


def tiff_claiming(width: int, height: int) -> bytes:
    """A little-endian TIFF whose one IFD declares ``width`` x ``height`` 32-bit float pixels in one strip."""
    tags = [
        (256, 4, 1, width),  # ImageWidth, LONG
        (257, 4, 1, height),  # ImageLength
        (258, 3, 1, 32),  # BitsPerSample
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, 1),  # Photometric: black is zero
        (273, 4, 1, 8),  # StripOffsets
        (277, 3, 1, 1),  # SamplesPerPixel
        (278, 4, 1, height),  # RowsPerStrip
        (279, 4, 1, 4 * width * height % (1 << 32)),  # StripByteCounts
        (339, 3, 1, 3),  # SampleFormat: IEEE float
    ]
    ifd = struct.pack("<H", len(tags)) + b"".join(
        struct.pack("<HHI", tag, kind, count) + (struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value))
        for tag, kind, count, value in tags
    ) + struct.pack("<I", 0)  # fmt: skip
    data_at = 8
    return b"II*\x00" + struct.pack("<I", data_at + 64) + b"\0" * 64 + ifd


# ----------------------------------------------------------------------------------------------- corpora
def bombs() -> dict[str, tuple[Writer, str]]:
    """Files of at most a few MB (written by their writer) that declare or inflate to gigabytes."""
    payload = bytes(8 << 20)
    shared = raw(payload) + b"q\x00"  # BINBYTES then BINPUT 0: one buffer for every array below
    budget = pickle_program(
        MARK,
        *[
            reconstruct((0,)) + tup(integer(1), tup(integer(1 << 20)), dtype(">f8"), FALSE, shared if i == 0 else b"h\x00") + BUILD
            for i in range(24)
        ],
        b"l",  # LIST of the 16 arrays
    )  # fmt: skip
    return {
        "object_reconstruct.npy": (
            object_npy(pickle_program(glob(MULTIARRAY, "_reconstruct") + tup(glob("numpy", "ndarray"), tup(integer(300_000_000)), dtype("O8")) + REDUCE)),
            "too large",
        ),
        "object_setstate.npy": (
            object_npy(pickle_program(array_state((300_000_000,), "O8", EMPTY_LIST))),
            "too large",
        ),
        "pickled_floats.npy": (
            object_npy(pickle_program(array_state((100_000, 100_000), "f8", raw(b"\0" * 8)))),
            "too large",
        ),
        "pickled_budget.npy": (object_npy(budget), "hold more than"),
        "pickle_long_bytes.npy": (object_npy(b"\x80\x04\x8e" + struct.pack("<Q", 1 << 40) + b"xx"), "corrupt object array"),
        "pickle_many_ops.npy": (object_npy(b"\x80\x02" + b"N0" * 100_000 + b"N."), "more than 1000 operations"),
        "header_shape.npy": (npy_header("<f8", (100_000, 100_000)) + bytes(64), "too large"),
        "axion_member_inflates.npz": (_inflating_member("axion_mass.npy", None), "declares"),
        "image_member_lies.npz": (_inflating_member("image.npy", 64), "data after its array"),
        "zip_directory.npz": (_zip_directory_bomb, "65535 members"),
        "fits_naxis.fits": (fits_header(_image_cards(100_000, 100_000)), "too large"),
        "fits_header.fits": (_fits_header_bomb, "header longer than"),
        "fits_gzip.fits.gz": (_fits_gzip_bomb, "no image data"),
        "png_pixels.png": (png_claiming(100_000, 100_000), "too large"),
        "tiff_pixels.tif": (tiff_claiming(60_000, 60_000), "too large"),
    }  # fmt: skip


def hostile() -> dict[str, tuple[Writer, str]]:
    """Small malformed files that make NumPy, zipfile, astropy or PIL raise something other than a clean
    refusal; each must come out as one LensFileError line with these words."""
    image = npy(IMAGE)
    encrypted = _patch_central(_zip({"image.npy": image}), 8, "<H", 1, local_offset=6)
    undecodable = bytearray(_zip({"image.npy": image}))
    at = undecodable.index(b"PK\x01\x02")
    struct.pack_into("<H", undecodable, at + 8, 0x800)  # names are UTF-8 ...
    undecodable[at + 46 : at + 48] = b"\xff\xfe"  # ... but this one is not
    deflated = bytearray(_zip({"image.npy": image}, zipfile.ZIP_DEFLATED))
    deflated[40:60] = bytes(range(200, 220))  # inside the compressed stream
    zip64 = bytearray(_zip({"image.npy": image}))
    end = zip64.rindex(b"PK\x05\x06")
    zip64[end:end] = b"PK\x06\x07" + bytes(16)  # a zip64 locator before the end record
    return {
        "ndim_100.npy": (npy_header("<f8", (1,) * 100) + bytes(8), "100 dimensions"),
        "ndim_40.npy": (npy_header("<f8", (1,) * 38 + (4, 4)) + bytes(128), "40 dimensions"),
        "mass_overflow.npy": (npy(object_array(IMAGE, 10**400)), "axion mass is not a finite"),
        "mass_nan.npy": (npy(object_array(IMAGE, float("nan"))), "axion mass is not a finite"),
        "int_digits.npy": (object_npy(pickle_program(glob("builtins", "int") + tup(text("9" * 100_000)) + REDUCE)), "corrupt object array"),
        "ndarray_call.npy": (object_npy(pickle_program(glob("numpy", "ndarray") + tup(tup(integer(10**8)), text("f8")) + REDUCE)), "refused a direct ndarray call"),
        "persistent_id.npy": (object_npy(pickle_program(text("x") + b"Q")), "persistent id"),
        "extension_code.npy": (object_npy(pickle_program(b"\x82\x01")), "corrupt object array"),
        "structured_dtype.npy": (object_npy(pickle_program(array_state((4,), "V8", raw(bytes(32))))), "unsupported dtype"),
        "object_scalar.npy": (object_npy(pickle_program(glob(MULTIARRAY, "scalar") + tup(dtype("O8"), text("x")) + REDUCE)), "unsupported scalar"),
        "out_of_band.npy": (object_npy(b"\x80\x05\x97."), "corrupt object array"),
        "npz_encrypted.npz": (encrypted, "encrypted"),
        "npz_bzip2.npz": (_zip({"image.npy": image}, zipfile.ZIP_BZIP2), "unsupported .npz compression"),
        "npz_lzma.npz": (_zip({"image.npy": image}, zipfile.ZIP_LZMA), "unsupported .npz compression"),
        "npz_bad_name.npz": (bytes(undecodable), "undecodable text"),
        "npz_corrupt_deflate.npz": (bytes(deflated), "corrupt compressed data"),
        "npz_bad_crc.npz": (_patch_central(_zip({"image.npy": image}), 16, "<L", 12345), "not a valid .npz archive"),
        "npz_zip64.npz": (bytes(zip64), "zip64"),
        "npz_mass_text.npz": (_zip({"image.npy": image, "axion_mass.npy": npy(np.array(["heavy"]))}), "unsupported dtype"),
        "npz_mass_inf.npz": (_zip({"image.npy": image, "axion_mass.npy": npy(np.array(np.inf))}), "not a finite"),
        "fits_bitpix.fits": (fits_header(_image_cards(8, 8, bitpix=7)), "bad NAXIS or BITPIX"),
        "fits_naxis_100.fits": (fits_header(_image_cards(*(1,) * 98, 8, 8)), "100 dimensions"),
        "fits_naxis_text.fits": (fits_header([("SIMPLE", True), ("BITPIX", -32), ("NAXIS", 2), ("NAXIS1", "wide"), ("NAXIS2", 8)]), "bad NAXISn"),
        "fits_no_end.fits": (fits_header(_image_cards(8, 8), end=False), "truncated header"),
        "fits_is_a_zip.fits": (_zip({"image.fits": fits_header(_image_cards(8, 8)) + bytes(2880)}), "no FITS signature"),
        "fits_mass_text.fits": (fits_header(_image_cards(8, 8) + [("AXIONM", "heavy")]) + bytes(2880), "AXIONM is not a number"),
        "fits_truncated.fits.gz": (_gzip(fits_header(_image_cards(8, 8)) + bytes(2880))[:-40], "not a readable FITS file"),
        "png_is_a_gif.png": (b"GIF89a" + bytes(40), "not a PNG file"),
        "png_is_eps.png": (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "not a PNG file"),
        "tiff_bad_strips.tif": (tiff_claiming(64, 64), "not a readable image"),
    }  # fmt: skip


def canaries() -> dict[str, tuple[Writer, str]]:
    """Files whose bytes hold :data:`CANARY` where library error messages would quote it."""
    header = f"{{'descr': '{CANARY}', 'fortran_order': False, 'shape': (4, 4), }}".encode()
    return {
        "text.npy": (f"root:x:0:0:{CANARY}:/root:/bin/bash\n".encode(), "no .npy signature"),
        "descr.npy": (b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header) + 1) + header + b"\n" + bytes(64), "unreadable header"),
        "fields.npy": (npy_header([(CANARY, "<f8")], (4, 4)) + bytes(128), "unsupported dtype structured"),
        "members.npz": (_zip({f"{CANARY}_a.npy": npy(IMAGE), f"{CANARY}_b.npy": npy(IMAGE)}), "none is named 'image'"),
        "global.npy": (object_npy(pickle_program(glob(f"{CANARY}mod", "run") + tup() + REDUCE)), "a global of an unknown module"),
        "text.fits": (f"SIMPLE = {CANARY}".encode().ljust(2880), "not a readable FITS file"),
        "cards.fits": (fits_header(_image_cards(8, 8, bitpix=f"{CANARY}"), filler=3), "bad NAXIS or BITPIX"),
        "text.png": (f"{CANARY} is not an image".encode(), "not a PNG file"),
        "text.npz": (f"{CANARY} is not a zip".encode() * 4, "no zip directory"),
    }  # fmt: skip


def _gzip(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data)


def write(root: Path, files: dict[str, tuple[Writer, str]]) -> dict[str, tuple[Path, str]]:
    """Write a corpus into ``root``; returns {name: (path, expected words)}."""
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, (writer, words) in files.items():
        path = root / name
        if callable(writer):
            writer(path)
        else:
            path.write_bytes(writer)
        out[name] = (path, words)
    return out
