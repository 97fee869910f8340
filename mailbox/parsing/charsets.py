"""Bytes → text whatever the declared charset: aliases for the labels real mail carries, then fallbacks.

Declared charsets lie (UTF-8 labelled us-ascii, windows-1252 labelled iso-8859-1) or name nothing Python
knows (``DEFAULT_CHARSET``, ``unknown-8bit``). Decoding never raises: it tries the declared codec, then
UTF-8, then windows-1252/latin-1, and as a last resort replaces what it cannot read.
"""

import codecs
from functools import lru_cache

# Labels seen in real mail that Python does not know, or knows by a narrower codec than senders use.
# Windows GDI constants (``*_CHARSET``) come from Outlook and spam kits; the CJK ones map to the
# Microsoft supersets that the sending systems actually write.
_ALIASES = {
    "default": "cp1252",
    "default_charset": "cp1252",
    "ansi_charset": "cp1252",
    "oem_charset": "cp437",
    "gb2312_charset": "gb18030",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "chinesebig5": "cp950",
    "chinesebig5_charset": "cp950",
    "big5": "cp950",
    "x-big5": "cp950",
    "shiftjis_charset": "cp932",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "sjis": "cp932",
    "hangeul_charset": "cp949",
    "hangul_charset": "cp949",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "euc_kr": "cp949",
    "russian_charset": "cp1251",
    "cyrillic": "cp1251",
    "easteurope_charset": "cp1250",
    "greek_charset": "cp1253",
    "turkish_charset": "cp1254",
    "hebrew_charset": "cp1255",
    "arabic_charset": "cp1256",
    "baltic_charset": "cp1257",
    "thai_charset": "cp874",
    "windows-874": "cp874",
    "tis-620": "cp874",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-8-e": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "iso-8859-6-e": "iso-8859-6",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "x-mac-cyrillic": "mac_cyrillic",
    "unicode-1-1-utf-7": "utf-7",
    "x-unicode20utf8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
    "x-user-defined": "latin-1",
    # WHATWG: browsers read latin-1 and ASCII labels as windows-1252, and so does most mail software.
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
}
# Labels that say "no idea": decode as UTF-8 if it is valid, else as windows-1252.
_UNKNOWN = frozenset({"", "unknown-8bit", "x-unknown", "unknown", "8bit", "charset", "none", "us-ascii", "ascii"})
# Text codecs Python has that no mail should select: they interpret escapes or are slow on hostile input.
_REFUSED = frozenset({"idna", "punycode", "raw_unicode_escape", "unicode_escape", "undefined", "mbcs", "oem"})
_UTF8_THEN_WINDOWS = ("utf-8", "cp1252", "latin-1")
_MAX_LABEL = 64
_NOT_ASCII_COMPATIBLE = ("iso2022", "utf-16", "utf-32", "utf-7", "hz")


@lru_cache(maxsize=512)
def codec_for(label: str | None) -> str | None:
    """The Python codec for a charset label, or ``None`` when the label tells nothing usable."""
    name = (label or "").strip().strip("\"'").strip().lower()
    name = name.split("*", 1)[0]  # RFC 2231 language suffix: utf-8*en
    if name in _UNKNOWN or len(name) > _MAX_LABEL or not (name.isascii() and name.isprintable()):
        return None
    name = _ALIASES.get(name, name)
    for candidate in (name, name.replace("-", ""), name.replace("_", "-")):
        try:
            info = codecs.lookup(candidate)
        except (LookupError, ValueError):
            continue
        if not getattr(info, "_is_text_encoding", True) or info.name in _REFUSED:
            return None
        return info.name
    return None


def _attempts(label: str | None, fallback: str | None) -> tuple[str, ...]:
    codec = codec_for(label)
    if codec is None or codec in ("utf-8", "ascii"):
        extra = codec_for(fallback)
        return ("utf-8", extra, "cp1252", "latin-1") if extra else _UTF8_THEN_WINDOWS
    if codec in ("cp1252", "iso8859-1"):
        return ("cp1252", "latin-1")
    if codec.startswith(_NOT_ASCII_COMPATIBLE):
        return (codec,)  # its bytes read as UTF-8 would be escape codes or NULs, not text
    return (codec, "utf-8")


def decode_text(data: bytes, label: str | None, fallback: str | None = None) -> str:
    """``data`` as text: the declared charset if the bytes fit it, else UTF-8, ``fallback`` (the
    message's charset, for undeclared 8-bit headers), windows-1252; never raises."""
    attempts = _attempts(label, fallback)
    for codec in attempts:
        try:
            return data.decode(codec)
        except Exception:  # noqa: BLE001 - UnicodeDecodeError, or a codec failing its own way
            if codec == "utf-8" and (text := _mostly_utf8(data)) is not None:
                return text
    return data.decode(attempts[0], errors="replace")


def _mostly_utf8(data: bytes) -> str | None:
    """UTF-8 with a few broken sequences (a truncated character, a stray byte) is still UTF-8:
    legacy 8-bit text fails on nearly every non-ASCII byte instead."""
    text = data.decode("utf-8", errors="replace")
    non_ascii = sum(1 for byte in data if byte > 0x7F)
    return text if text.count("\ufffd") * 8 <= non_ascii else None
