"""CPU names as keys: one normal form for ``/proc/cpuinfo`` names and the CPU table's models.

Why a key and not a fuzzy match: a near miss costs watts. "Xeon E5-2686 v4"
and "v3" are different generations, "i7-1185G7" (28 W) and "i7-1185G7E"
(15 W) different parts, and a name that only *contains* a table model may be
a newer part with a suffix. So a name is reduced to a key — its vendor plus
the family and model-number tokens — and a table row matches only when its
key is *equal*; anything else falls back, and the reason says why.

The normal form (:func:`normalise_cpu_name`), applied to both sides:

* lowercase; trademarks ``(R)`` ``(TM)`` ``(C)`` ``®`` ``™`` dropped in place
  ("FX(tm)-8350" → "fx-8350"), any other parenthesised text removed;
  ``Core(TM)2`` becomes ``core 2``;
* the clock (``@ 2.30GHz``, and anything after ``@``), a leading "11th Gen",
  "n-Core"/"n-Cores"/"Six-Core", "Emb", "CPU", "Processor", "APU" removed;
* an integrated-graphics tail removed ("with Radeon Graphics", "w/ Radeon
  780M Graphics", "Radeon R7, 12 Compute Cores 4C+8G": from the first comma
  or the word "radeon" on);
* a lone ``0`` token removed: first-generation Xeon E5/E7 print
  "E5-2670 0" where later ones print "E5-2670 v2".

The vendor (:func:`cpu_key`) is the leading "intel"/"amd", else the one
vendor whose family words the name holds (Xeon, Core, Pentium, Celeron,
Atom → Intel; EPYC, Ryzen, Threadripper, Opteron, Athlon, Phenom, Sempron,
Turion, FX-, A4…A12- → AMD), else unknown. A name with no digit has no model
number ("AMD EPYC Processor", "Intel Xeon Processor (Icelake)" from a
hypervisor) and gets no key.
"""

from __future__ import annotations

import re

INTEL = "intel"
AMD = "amd"

_TRADEMARKS = re.compile(r"\((?:r|tm|c)\)|[®™]")
_CORE2 = re.compile(r"\bcore2\b")
_PARENS = re.compile(r"\([^)]*\)")
_CLOCK = re.compile(r"@.*$")
_GRAPHICS = re.compile(r"(?:,.*$|\s(?:with|w/)\s.*$|\bradeon\b.*$)")
_NOISE = re.compile(
    r"\b(?:\d+(?:st|nd|rd|th)\s+gen(?:eration)?|\d+-cores?|(?:dual|triple|quad|six|eight|"
    r"twelve|sixteen)-core|emb|cpu|processor|apu)\b"
)
_V1_ZERO = re.compile(r"(?<=\s)0(?=\s|$)")

#: Family words that belong to one vendor only (checked on whole tokens or token prefixes).
_FAMILY_WORDS: dict[str, tuple[str, ...]] = {
    INTEL: ("xeon", "core", "pentium", "celeron", "atom"),
    AMD: ("epyc", "ryzen", "threadripper", "opteron", "athlon", "phenom", "sempron", "turion"),
}
_AMD_PREFIXES = re.compile(r"^(?:fx-?\d|a(?:4|6|8|9|10|12)-\d|e[12]-\d)")


def normalise_cpu_name(name: str) -> str:
    """The normal form of a CPU name (see the module docstring).

    >>> normalise_cpu_name("Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz")
    'intel xeon e5-2686 v4'
    >>> normalise_cpu_name("AMD Ryzen 7 5800H with Radeon Graphics")
    'amd ryzen 7 5800h'
    >>> normalise_cpu_name("11th Gen Intel(R) Core(TM) i7-1185G7 @ 3.00GHz")
    'intel core i7-1185g7'
    >>> normalise_cpu_name("Intel(R) Xeon(R) CPU E5-2670 0 @ 2.60GHz")
    'intel xeon e5-2670'
    """
    text = _TRADEMARKS.sub("", name.lower())
    text = _CORE2.sub("core 2", text)
    text = _PARENS.sub(" ", text)
    text = _CLOCK.sub(" ", text)
    text = _GRAPHICS.sub(" ", text)
    text = _NOISE.sub(" ", text)
    text = " ".join(text.split())
    return " ".join(_V1_ZERO.sub(" ", text).split())


def cpu_vendor(normalised: str) -> str | None:
    """``"intel"``, ``"amd"`` or None, from a normalised name (see the module docstring).

    >>> cpu_vendor("ryzen 5 5600x"), cpu_vendor("amd xeon 1"), cpu_vendor("qemu virtual 2.5+")
    ('amd', None, None)
    """
    tokens = normalised.split()
    found = set()
    for token in tokens:
        for vendor, words in _FAMILY_WORDS.items():
            if token in (INTEL, AMD):
                found.add(token)
            elif token in words or (vendor == AMD and _AMD_PREFIXES.match(token)):
                found.add(vendor)
    return found.pop() if len(found) == 1 else None


def cpu_key(name: str) -> tuple[str | None, str | None]:
    """``(key, None)`` for a name with a vendor and a model number, else ``(None, why)``.

    The key is the vendor followed by the other tokens of the normal form.

    >>> cpu_key("AMD EPYC 7R13 Processor")
    ('amd epyc 7r13', None)
    >>> cpu_key("Ryzen 5 5600X")
    ('amd ryzen 5 5600x', None)
    >>> cpu_key("AMD EPYC Processor (with IBPB)")[1]
    "the name 'AMD EPYC Processor (with IBPB)' gives no model number"
    """
    normal = normalise_cpu_name(name)
    if not any(ch.isdigit() for ch in normal):
        return None, f"the name {name!r} gives no model number"
    vendor = cpu_vendor(normal)
    if vendor is None:
        return None, (f"the name {name!r} names no single vendor (Intel or AMD) by its vendor "
                      "or family words")
    rest = [t for t in normal.split() if t not in (INTEL, AMD)]
    return " ".join([vendor, *rest]), None


_CORES_IN_NAME = re.compile(
    r"\b(\d+|dual|triple|quad|six|eight|twelve|sixteen)-cores?\b", re.IGNORECASE)
_WORDS = {"dual": 2, "triple": 3, "quad": 4, "six": 6, "eight": 8, "twelve": 12, "sixteen": 16}


def cores_in_name(name: str) -> int | None:
    """The core count a name states ("AMD EPYC 7763 64-Core Processor" → 64), else None.

    >>> cores_in_name("AMD Ryzen 5 2600 Six-Core Processor"), cores_in_name("AMD EPYC 7R13")
    (6, None)
    """
    m = _CORES_IN_NAME.search(name)
    if m is None:
        return None
    word = m.group(1).lower()
    return _WORDS.get(word) or int(word)
