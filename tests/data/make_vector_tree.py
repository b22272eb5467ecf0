#!/usr/bin/python3
"""Writes ROOT files with a TTree of std::vector branches, the fixtures of the
vector-branch tests (ROOT and uproot are not packaged for Debian, so this
writes the format itself):

  vf  std::vector<float>     vi  std::vector<int>      vd  std::vector<double>
  vb  std::vector<bool>      vs  std::vector<std::string> (read as unsupported)

600 entries of 0 to 9 items each (entry 0 and every 97th entry empty), in
baskets of 100 entries (6 per branch), as ROOT 6 lays them out: one
TBranchElement with one TLeafElement per branch, each entry a byte count,
a version, the item count and the big-endian items, then the basket's entry
offset table. The file carries the StreamerInfo of TTree, TBranch,
TBranchElement, TLeaf and TLeafElement, so JSROOT (tests/data/jsroot) can
read it, and tests/data/vector_expected.json is JSROOT's dump of it:

  /usr/bin/python3 tests/data/make_vector_tree.py tests/data
  cd tests/data/jsroot && node dump_expected.mjs ../vector_branches_*.root > ../vector_expected.json
  /usr/bin/python3 tests/data/make_vector_tree.py --check tests/data/vector_expected.json

The last step checks that JSROOT read back every value this script wrote.

Writes vector_branches_zlib.root (baskets, tree and StreamerInfo zlib level
1) and vector_branches_uncompressed.root (the same values, nothing
compressed). The tree's fLeaves list, which ROOT fills with references to
the branches' leaves, is left empty: readers find the leaves in the branches.
Deterministic: the same bytes every run (fixed seed and dates).
"""
import os
import random
import struct
import sys
import zlib

K_BYTE_COUNT = 0x40000000
K_NEW_CLASS = 0xFFFFFFFF
DATIME = ((2026 - 1995) << 26) | (11 << 22) | (30 << 17) | (12 << 12)
N_ENTRIES = 600
BASKET_ENTRIES = 100
VECTOR_VERSION = 9  # the version ROOT 6 writes before a std::vector's items


def tstring(s):
    b = s.encode()
    return (bytes([len(b)]) if len(b) < 255 else b"\xff" + struct.pack(">i", len(b))) + b


def versioned(version, body):
    """A byte count and a version before `body`, as ROOT's WriteVersion writes them."""
    return struct.pack(">Ih", K_BYTE_COUNT | (len(body) + 2), version) + body


def tobject():
    return struct.pack(">hII", 1, 0, 0x03000000)


def tnamed(name, title):
    return versioned(1, tobject() + tstring(name) + tstring(title))


def any_object(class_name, body):
    """WriteObjectAny: a byte count, a new-class tag and the class name, then the object."""
    rest = struct.pack(">I", K_NEW_CLASS) + class_name.encode() + b"\0" + body
    return struct.pack(">I", K_BYTE_COUNT | len(rest)) + rest


def null_pointer():
    return struct.pack(">I", 0)


def tobjarray(items):
    """items: (class name, streamed object) pairs."""
    body = tobject() + tstring("") + struct.pack(">ii", len(items), 0)
    for cls, obj in items:
        body += any_object(cls, obj)
    return versioned(3, body)


# ---------------------------------------------------------------------------
# StreamerInfo: the classes a TTree of TBranchElements needs.

def element(kind, name, title, typ, size, type_name, extra=b""):
    # TStreamerElement v4: TNamed, fType, fSize, fArrayLength, fArrayDim,
    # fMaxIndex[5], fTypeName.
    base = versioned(4, tnamed(name, title) + struct.pack(">iiii", typ, size, 0, 0) +
                     struct.pack(">5i", 0, 0, 0, 0, 0) + tstring(type_name))
    versions = {"TStreamerBase": 3, "TStreamerBasicType": 2, "TStreamerString": 2,
                "TStreamerObject": 2, "TStreamerObjectAny": 2, "TStreamerObjectPointer": 2,
                "TStreamerBasicPointer": 2}
    return kind, versioned(versions[kind], base + extra)


def base(name, version, typ=0, title=""):
    return element("TStreamerBase", name, title, typ, 0, "BASE", struct.pack(">i", version))


BASIC = {"short": (2, 2), "int": (3, 4), "float": (5, 4), "double": (8, 8),
         "unsigned char": (11, 1), "unsigned int": (13, 4), "Long64_t": (16, 8), "bool": (18, 1)}


def basic(name, type_name, typ=None):
    t, size = BASIC[type_name]
    return element("TStreamerBasicType", name, "", typ if typ is not None else t, size, type_name)


def string(name):
    return element("TStreamerString", name, "", 65, 24, "TString")


def obj(name, type_name, size):
    return element("TStreamerObject", name, "", 61, size, type_name)


def obj_any(name, type_name, size):
    return element("TStreamerObjectAny", name, "", 62, size, type_name)


def obj_pointer(name, type_name):
    return element("TStreamerObjectPointer", name, "", 64, 8, type_name)


def basic_pointer(name, type_name, typ, size, count, count_class, count_version):
    # TStreamerBasicPointer: the element, then the count's class version, name and class.
    return element("TStreamerBasicPointer", name, f"[{count}]", 40 + typ, size, type_name + "*",
                   struct.pack(">i", count_version) + tstring(count) + tstring(count_class))


def streamer_info(name, version, checksum, elements):
    elems = list(elements)
    body = tnamed(name, "") + struct.pack(">II", checksum, version)
    body += any_object("TObjArray", tobjarray(elems))
    return "TStreamerInfo", versioned(9, body)


def streamer_infos():
    infos = [
        streamer_info("TObject", 1, 2417737773, [basic("fUniqueID", "unsigned int"),
                                                 basic("fBits", "unsigned int", 15)]),
        streamer_info("TNamed", 1, 3753331260, [base("TObject", 1, 66), string("fName"),
                                                string("fTitle")]),
        streamer_info("TAttLine", 2, 2483504457, [basic("fLineColor", "short"),
                                                  basic("fLineStyle", "short"),
                                                  basic("fLineWidth", "short")]),
        streamer_info("TAttFill", 2, 4292422290, [basic("fFillColor", "short"),
                                                  basic("fFillStyle", "short")]),
        streamer_info("TAttMarker", 2, 689802220, [basic("fMarkerColor", "short"),
                                                   basic("fMarkerStyle", "short"),
                                                   basic("fMarkerSize", "float")]),
        streamer_info("ROOT::TIOFeatures", 1, 446770960, [basic("fIOBits", "unsigned char")]),
        streamer_info("TTree", 20, 1919213695, [
            base("TNamed", 1, 67), base("TAttLine", 2), base("TAttFill", 2), base("TAttMarker", 2),
            basic("fEntries", "Long64_t"), basic("fTotBytes", "Long64_t"),
            basic("fZipBytes", "Long64_t"), basic("fSavedBytes", "Long64_t"),
            basic("fFlushedBytes", "Long64_t"), basic("fWeight", "double"),
            basic("fTimerInterval", "int"), basic("fScanField", "int"), basic("fUpdate", "int"),
            basic("fDefaultEntryOffsetLen", "int"), basic("fNClusterRange", "int", 6),
            basic("fMaxEntries", "Long64_t"), basic("fMaxEntryLoop", "Long64_t"),
            basic("fMaxVirtualSize", "Long64_t"), basic("fAutoSave", "Long64_t"),
            basic("fAutoFlush", "Long64_t"), basic("fEstimate", "Long64_t"),
            basic_pointer("fClusterRangeEnd", "Long64_t", 16, 8, "fNClusterRange", "TTree", 20),
            basic_pointer("fClusterSize", "Long64_t", 16, 8, "fNClusterRange", "TTree", 20),
            obj_any("fIOFeatures", "ROOT::TIOFeatures", 1),
            obj("fBranches", "TObjArray", 64), obj("fLeaves", "TObjArray", 64),
            obj_pointer("fAliases", "TList*"), obj_any("fIndexValues", "TArrayD", 24),
            obj_any("fIndex", "TArrayI", 24), obj_pointer("fTreeIndex", "TVirtualIndex*"),
            obj_pointer("fFriends", "TList*"), obj_pointer("fUserInfo", "TList*"),
            obj_pointer("fBranchRef", "TBranchRef*")]),
        streamer_info("TBranch", 13, 278366892, [
            base("TNamed", 1, 67), base("TAttFill", 2), basic("fCompress", "int"),
            basic("fBasketSize", "int"), basic("fEntryOffsetLen", "int"),
            basic("fWriteBasket", "int"), basic("fEntryNumber", "Long64_t"),
            obj_any("fIOFeatures", "ROOT::TIOFeatures", 1), basic("fOffset", "int"),
            basic("fMaxBaskets", "int", 6), basic("fSplitLevel", "int"),
            basic("fEntries", "Long64_t"), basic("fFirstEntry", "Long64_t"),
            basic("fTotBytes", "Long64_t"), basic("fZipBytes", "Long64_t"),
            obj("fBranches", "TObjArray", 64), obj("fLeaves", "TObjArray", 64),
            obj("fBaskets", "TObjArray", 64),
            basic_pointer("fBasketBytes", "int", 3, 4, "fMaxBaskets", "TBranch", 13),
            basic_pointer("fBasketEntry", "Long64_t", 16, 8, "fMaxBaskets", "TBranch", 13),
            basic_pointer("fBasketSeek", "Long64_t", 16, 8, "fMaxBaskets", "TBranch", 13),
            string("fFileName")]),
        streamer_info("TBranchElement", 10, 2437242542, [
            base("TBranch", 13), string("fClassName"), string("fParentName"),
            string("fClonesName"), basic("fCheckSum", "unsigned int"),
            basic("fClassVersion", "short"), basic("fID", "int"), basic("fType", "int"),
            basic("fStreamerType", "int"), basic("fMaximum", "int"),
            obj_pointer("fBranchCount", "TBranchElement*"),
            obj_pointer("fBranchCount2", "TBranchElement*")]),
        streamer_info("TLeaf", 2, 1830715730, [
            base("TNamed", 1, 67), basic("fLen", "int"), basic("fLenType", "int"),
            basic("fOffset", "int"), basic("fIsRange", "bool"), basic("fIsUnsigned", "bool"),
            obj_pointer("fLeafCount", "TLeaf*")]),
        streamer_info("TLeafElement", 1, 2745637203, [
            base("TLeaf", 2), basic("fID", "int"), basic("fType", "int")]),
    ]
    # TList v5: TObject, fName, the count, then each object and its option.
    body = tobject() + tstring("") + struct.pack(">i", len(infos))
    for cls, info in infos:
        body += any_object(cls, info) + tstring("")
    return versioned(5, body)


# ---------------------------------------------------------------------------
# Values

def make_values():
    rng = random.Random(20261130)
    lengths = [0 if e % 97 == 0 else rng.randint(0, 9) for e in range(N_ENTRIES)]
    f32 = lambda x: struct.unpack(">f", struct.pack(">f", x))[0]
    values = {"vf": [], "vi": [], "vd": [], "vb": [], "vs": []}
    specials_f = [float("inf"), float("-inf"), 3.4028234663852886e38, 1.401298464324817e-45, -0.0]
    for e, n in enumerate(lengths):
        vf = [f32(rng.gauss(0.0, 50.0)) for _ in range(n)]
        vi = [rng.randint(-2**31, 2**31 - 1) if rng.random() < 0.2 else rng.randint(-1000, 1000)
              for _ in range(n)]
        vd = [rng.gauss(0.0, 1e6) for _ in range(n)]
        if e == 1 and n:
            vf[0], vi[0], vd[0] = specials_f[e % 5], -2**31, 1e-300
        if e == 5:
            vf = specials_f[:]
            vi = [2**31 - 1, -2**31, 0, -1, 1]
            vd = [float("inf"), float("-inf"), 1.7976931348623157e308, 5e-324, -0.0]
        vb = [rng.random() < 0.5 for _ in range(len(vf))]
        vs = [f"item{e}_{i}" for i in range(len(vf) % 4)]
        values["vf"].append(vf)
        values["vi"].append(vi)
        values["vd"].append(vd)
        values["vb"].append(vb)
        values["vs"].append(vs)
    return values


BRANCHES = [  # name, class, item format, leaf fType
    ("vf", "vector<float>", ">f"),
    ("vi", "vector<int>", ">i"),
    ("vd", "vector<double>", ">d"),
    ("vb", "vector<bool>", ">?"),
    ("vs", "vector<string>", None),
]


def entry_bytes(fmt, items):
    if fmt is None:
        body = struct.pack(">i", len(items)) + b"".join(tstring(s) for s in items)
    else:
        body = struct.pack(">i", len(items)) + b"".join(struct.pack(fmt, x) for x in items)
    return versioned(VECTOR_VERSION, body)


# ---------------------------------------------------------------------------
# The file

def key_header(nbytes, objlen, keylen, seek, pdir, cls, name, title, cycle=1):
    return (struct.pack(">ihiIhhii", nbytes, 4, objlen, DATIME, keylen, cycle, seek, pdir) +
            tstring(cls) + tstring(name) + tstring(title))


def key_length(cls, name, title):
    return len(key_header(0, 0, 0, 0, 0, cls, name, title))


def compress(data, level):
    """ROOT's blocks: "ZL", method 8, 3-byte compressed and uncompressed sizes, zlib."""
    if level == 0:
        return data
    out = b""
    for i in range(0, len(data), 0xFFFFFF):
        chunk = data[i:i + 0xFFFFFF]
        z = zlib.compress(chunk, level)
        out += b"ZL\x08" + len(z).to_bytes(3, "little") + len(chunk).to_bytes(3, "little") + z
    return out if len(out) < len(data) else data


class Writer:
    def __init__(self, file_name, level):
        self.name = file_name
        self.level = level
        self.buf = bytearray(100)  # the header, filled in at the end
        self.begin = 100

    def add_key(self, cls, name, title, data, extra_header=b""):
        """Appends a key holding `data` (compressed if it helps); returns (seek, nbytes, keylen, objlen)."""
        payload = compress(data, self.level)
        keylen = key_length(cls, name, title) + len(extra_header)
        seek = len(self.buf)
        nbytes = keylen + len(payload)
        self.buf += key_header(nbytes, len(data), keylen, seek, self.begin, cls, name, title)
        self.buf += extra_header + payload
        return seek, nbytes, keylen, len(data)


def write_file(path, level, values):
    file_name = os.path.basename(path)
    w = Writer(file_name, level)
    title = "std::vector branches for hepml's reader tests"
    # Top directory key: TNamed strings, then the directory record (written
    # once its seeks are known).
    top_name = tstring(file_name) + tstring(title)
    top_keylen = key_length("TFile", file_name, title)
    nbytes_name = top_keylen + len(top_name)
    dir_record_len = 2 + 4 * 2 + 4 * 5 + 18 + 12
    top_nbytes = nbytes_name + dir_record_len
    w.buf += bytes(top_nbytes)  # filled in at the end

    compress_setting = 100 + level if level else 0
    branches = []
    for name, cls, fmt in BRANCHES:
        seeks, nbytes_list, firsts = [], [], []
        tot = zipped = 0
        for first in range(0, N_ENTRIES, BASKET_ENTRIES):
            entries = values[name][first:first + BASKET_ENTRIES]
            # TBasket header after the key: version, fBufferSize, fNevBufSize,
            # fNevBuf, fLast, flag.
            key_len = key_length("TBasket", name, "events") + 2 + 4 * 4 + 1
            data = b""
            offsets = []
            for items in entries:
                offsets.append(key_len + len(data))
                data += entry_bytes(fmt, items)
            last = key_len + len(data)
            data += struct.pack(">i", len(offsets) + 1) + b"".join(struct.pack(">i", o) for o in offsets)
            data += struct.pack(">i", 0)
            header = struct.pack(">hiiiiB", 3, 32000, 40, len(entries), last, 0)
            seek, nbytes, keylen, objlen = w.add_key("TBasket", name, "events", data, header)
            seeks.append(seek)
            nbytes_list.append(nbytes)
            firsts.append(first)
            tot += keylen + objlen
            zipped += nbytes
        branches.append((name, cls, fmt, seeks, nbytes_list, firsts, tot, zipped))

    # StreamerInfo.
    si = streamer_infos()
    si_seek, si_nbytes, _, _ = w.add_key("TList", "StreamerInfo", "Doubly linked list", si)

    # The tree.
    leaf_types = {"vector<float>": 5, "vector<int>": 3, "vector<double>": 8, "vector<bool>": 18,
                  "vector<string>": 61}
    branch_objs = []
    tree_tot = tree_zip = 0
    for name, cls, fmt, seeks, nbytes_list, firsts, tot, zipped in branches:
        tree_tot += tot
        tree_zip += zipped
        max_baskets = len(seeks) + 1
        pad = lambda xs: xs + [0] * (max_baskets - len(xs))
        # TLeafElement v1: TLeaf v2 (TNamed, fLen, fLenType, fOffset, fIsRange,
        # fIsUnsigned, fLeafCount), fID, fType.
        leaf = versioned(1, versioned(2, tnamed(name, name) + struct.pack(">iii??", 1, 0, 0, False, False) +
                                      null_pointer()) + struct.pack(">ii", -1, -1))
        tbranch = versioned(13,
            tnamed(name, name) + versioned(2, struct.pack(">hh", 0, 1001)) +
            struct.pack(">iiiiq", compress_setting, 32000, 40, len(seeks), N_ENTRIES) +
            versioned(1, b"\0") +
            struct.pack(">iiiqqqq", 0, max_baskets, 99, N_ENTRIES, 0, tot, zipped) +
            tobjarray([]) + tobjarray([("TLeafElement", leaf)]) + tobjarray([]) +
            b"\x01" + b"".join(struct.pack(">i", x) for x in pad(nbytes_list)) +
            b"\x01" + b"".join(struct.pack(">q", x) for x in pad(firsts)) +
            b"\x01" + b"".join(struct.pack(">q", x) for x in pad(seeks)) +
            tstring(""))
        # TBranchElement v10: the TBranch, fClassName, fParentName,
        # fClonesName, fCheckSum, fClassVersion, fID, fType, fStreamerType,
        # fMaximum, fBranchCount, fBranchCount2.
        belem = versioned(10, tbranch + tstring(cls) + tstring("") + tstring("") +
                          struct.pack(">Ihiiii", 0, 6, -1, 0, -1, 0) + null_pointer() + null_pointer())
        branch_objs.append(("TBranchElement", belem))

    tree = versioned(20,
        tnamed("events", "vector branches") +
        versioned(2, struct.pack(">hhh", 602, 1, 1)) +
        versioned(2, struct.pack(">hh", 0, 1001)) +
        versioned(2, struct.pack(">hhf", 1, 1, 1.0)) +
        struct.pack(">qqqqq", N_ENTRIES, tree_tot, tree_zip, tree_zip, tree_zip) +
        struct.pack(">d", 1.0) + struct.pack(">iiiii", 0, 25, 0, 40, 0) +
        struct.pack(">qqqqqq", 1000000000000, 1000000000000, 0, -300000000, -30000000, 1000000) +
        b"\x00" + b"\x00" +  # fClusterRangeEnd, fClusterSize (no ranges)
        versioned(1, b"\0") +
        tobjarray(branch_objs) + tobjarray([]) +
        null_pointer() +                 # fAliases
        struct.pack(">i", 0) +           # fIndexValues (TArrayD, empty)
        struct.pack(">i", 0) +           # fIndex (TArrayI, empty)
        null_pointer() + null_pointer() + null_pointer() + null_pointer())
    tree_key = w.add_key("TTree", "events", "vector branches", tree)

    # The top directory's key list.
    keys_seek = len(w.buf)
    listed = key_header(tree_key[1], tree_key[3], tree_key[2], tree_key[0], w.begin, "TTree",
                        "events", "vector branches")
    keys_body = struct.pack(">i", 1) + listed
    keys_keylen = key_length("TFile", file_name, title)
    keys_nbytes = keys_keylen + len(keys_body)
    w.buf += key_header(keys_nbytes, len(keys_body), keys_keylen, keys_seek, w.begin, "TFile",
                        file_name, title) + keys_body

    # Free segments: one, from the end of the file on.
    free_seek = len(w.buf)
    free_keylen = key_length("TFile", file_name, title)
    free_body_len = 2 + 4 + 4
    free_nbytes = free_keylen + free_body_len
    end = free_seek + free_nbytes
    w.buf += key_header(free_nbytes, free_body_len, free_keylen, free_seek, w.begin, "TFile",
                        file_name, title) + struct.pack(">hii", 1, end + 1, 2000000000)

    # Top directory key and record.
    top = key_header(top_nbytes, top_nbytes - top_keylen, top_keylen, w.begin, 0, "TFile", file_name,
                     title) + top_name
    top += struct.pack(">hIIiiiii", 5, DATIME, DATIME, keys_nbytes, nbytes_name, w.begin, 0, keys_seek)
    top += struct.pack(">h", 1) + bytes(range(16)) + bytes(12)
    assert len(top) == top_nbytes
    w.buf[w.begin:w.begin + top_nbytes] = top

    # File header.
    header = b"root" + struct.pack(">iiiiiiiBiii", 62004, w.begin, end, free_seek, free_nbytes, 1,
                                   nbytes_name, 4, compress_setting, si_seek, si_nbytes)
    header += struct.pack(">h", 1) + bytes(range(16))
    w.buf[:len(header)] = header
    with open(path, "wb") as f:
        f.write(bytes(w.buf))


def check(dump_path):
    """Compares JSROOT's dump (dump_expected.mjs) with the values written; exits 1 on a difference."""
    import json
    import math
    dump = json.load(open(dump_path))
    values = make_values()
    files = [f for f, v in dump.items() if "same_as" not in v]
    bad = 0
    for f in files:
        cols = dump[f]["events"]["columns"]
        if dump[f]["events"]["entries"] != N_ENTRIES:
            print(f"{f}: {dump[f]['events']['entries']} entries, not {N_ENTRIES}")
            bad += 1
        for name, want in values.items():
            got = cols[name]
            for e in range(N_ENTRIES):
                g = [{"inf": math.inf, "-inf": -math.inf}.get(x, x) for x in got[e]]
                w = [int(x) if name == "vb" else x for x in want[e]]
                if g != w:
                    print(f"{f} {name} entry {e}: JSROOT read {got[e]}, written {want[e]}")
                    bad += 1
    print(f"{len(files)} distinct file(s), {len(values)} branches, {N_ENTRIES} entries: "
          f"{'all values as written' if not bad else f'{bad} differences'}")
    sys.exit(1 if bad else 0)


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--check":
        check(sys.argv[2])
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    values = make_values()
    write_file(os.path.join(out, "vector_branches_zlib.root"), 1, values)
    write_file(os.path.join(out, "vector_branches_uncompressed.root"), 0, values)


if __name__ == "__main__":
    main()
