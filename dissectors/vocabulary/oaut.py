"""MS-OAUT's automation types as NDR types: BSTR is the DCOM user-marshalled
FLAGGED_WORD_BLOB (2.2.23.2), SAFEARRAY the wireSAFEARRAY (2.2.30.10), both behind a
unique pointer. Built on dissectors.vocabulary.ndr; a protocol that uses neither never
sees their fields."""
from __future__ import annotations

from dissectors.vocabulary.ndr import NdrError, NdrType, Prim, Struct


class Bstr(NdrType):
    """BSTR on the wire: [unique] FLAGGED_WORD_BLOB* (MS-OAUT 2.2.23.2): max_count, fFlags,
    clSize, then clSize UTF-16 units, no NUL. fFlags carries the byte length, as Windows
    and impacket send it."""

    align = 4
    min_size = 4

    def pull(self, r, ctx, put):
        ref = r.num("I", "referent id")
        if ref == 0:
            return None
        r.defer(lambda: put(self.pull_blob(r)))
        return None

    @staticmethod
    def pull_blob(r):
        n = r.num("I", "BSTR max_count")
        r.num("I", "BSTR fFlags")
        size = r.num("I", "BSTR clSize")
        if size > n:
            raise NdrError("NDR: BSTR clSize %d exceeds max_count %d" % (size, n))
        r.count(n, 2, "BSTR")
        return r.take(2 * n, "BSTR").decode("utf-16-le", "replace")[:size]

    def push(self, w, v, ctx):
        if v is None:
            w.num("I", 0)
            return
        w.num("I", w.referent())
        w.defer(lambda: self.push_blob(w, v))

    @staticmethod
    def push_blob(w, v):
        units = v.encode("utf-16-le")
        w.num("I", len(units) // 2)
        w.num("I", len(units))
        w.num("I", len(units) // 2)
        w.put(units)


# wireSAFEARRAY (MS-OAUT 2.2.30.10): the union arm is chosen by sfType.
SF_TYPES = {0x02: "SF_I2", 0x03: "SF_I4", 0x08: "SF_BSTR", 0x09: "SF_DISPATCH", 0x0C: "SF_VARIANT",
            0x0D: "SF_UNKNOWN", 0x10: "SF_I1", 0x14: "SF_I8", 0x24: "SF_RECORD", 0x800D: "SF_HAVEIID"}
FADF = {"FADF_AUTO": 0x0001, "FADF_STATIC": 0x0002, "FADF_EMBEDDED": 0x0004, "FADF_FIXEDSIZE": 0x0010,
        "FADF_RECORD": 0x0020, "FADF_HAVEIID": 0x0040, "FADF_HAVEVARTYPE": 0x0080, "FADF_BSTR": 0x0100,
        "FADF_UNKNOWN": 0x0200, "FADF_DISPATCH": 0x0400, "FADF_VARIANT": 0x0800}


class SafeArray(NdrType):
    """SAFEARRAY(T) as [unique] wireSAFEARRAY (MS-OAUT 2.2.30.10).

    The referent is a conformant struct (cDims hoisted): cDims, fFeatures, cbElements,
    cLocks, SAFEARRAYUNION (an encapsulated union: sfType once, then the arm), then
    cDims SAFEARRAYBOUNDs. Decoded arms: SF_BSTR, SF_I1 (bytes), SF_I2, SF_I4, SF_I8 and
    SF_RECORD, whose wireBRECORDs carry each record NDR-encoded in pRecord (MS-OAUT
    2.2.28.2.1), decoded as the element type. Python sees the element list (or bytes).
    """

    align = 4
    min_size = 4
    ARMS = {"byte": 0x10, "USHORT": 0x02, "ULONG": 0x03, "LONG": 0x03, "hyper": 0x14, "BSTR": 0x08}

    def __init__(self, element: NdrType, content=None, cb_elements: int = None):
        super().__init__()
        self.element, self.content = element, content
        if isinstance(element, Bstr):
            self.sf_type, self.unit = 0x08, None
        elif isinstance(element, Struct):
            self.sf_type, self.unit = 0x24, None
        elif isinstance(element, Prim):
            self.sf_type, self.unit = {1: 0x10, 2: 0x02, 4: 0x03, 8: 0x14}[element.size], element
        else:
            raise TypeError("SAFEARRAY of %r" % element)
        self.cb_elements = cb_elements or {0x08: 8, 0x10: 1, 0x02: 2, 0x03: 4, 0x14: 8, 0x24: 8}[self.sf_type]
        self.features = {0x08: 0x0180, 0x24: 0x0020}.get(self.sf_type, 0x0080)

    def pull(self, r, ctx, put):
        ref = r.num("I", "referent id")
        if ref == 0:
            return None
        r.defer(lambda: put(self.pull_array(r)))
        return None

    def pull_array(self, r):
        dims = r.num("I", "SAFEARRAY conformance")
        c_dims = r.num("H", "cDims")
        r.num("H", "fFeatures")
        r.num("I", "cbElements")
        r.num("I", "cLocks")
        sf_type = r.num("I", "sfType")  # an encapsulated union's discriminant: sent once
        if sf_type != self.sf_type:
            raise NdrError("SAFEARRAY sfType %s where the IDL expects %s" % (
                SF_TYPES.get(sf_type, hex(sf_type)), SF_TYPES[self.sf_type]))
        if c_dims != dims:
            raise NdrError("SAFEARRAY cDims %d differs from its conformance %d" % (c_dims, dims))
        size = r.num("I", "Size")
        ref = r.num("I", "referent id")
        r.count(dims, 8, "SAFEARRAY bounds")
        for _ in range(dims):
            r.num("I", "cElements")
            r.num("i", "lLbound")
        if ref == 0:  # aBstr and aRecord are [ref]; the sized arrays' data pointers [unique]
            if self.sf_type in (0x08, 0x24):
                raise NdrError("NDR: the SAFEARRAY's [ref] element array pointer is NULL")
            return b"" if self.sf_type == 0x10 else []
        n = r.num("I", "max_count")
        if n != size:
            raise NdrError("SAFEARRAY Size %d differs from its array's max_count %d" % (size, n))
        if self.sf_type == 0x08:
            r.count(n, 4, "SAFEARRAY")
            out = [None] * n
            for i in range(n):
                Bstr().pull(r, None, lambda x, i=i: out.__setitem__(i, x))
            return out  # the BSTRs are deferred into this construction
        if self.sf_type == 0x24:
            r.count(n, 4, "SAFEARRAY")
            out = [None] * n
            for i in range(n):
                if r.num("I", "referent id"):
                    r.defer(lambda i=i: out.__setitem__(i, self.pull_record(r)))
            return out
        r.count(n, self.unit.size, "SAFEARRAY")
        if self.sf_type == 0x10:
            return r.take(n, "SAFEARRAY")
        return [r.num(self.unit.fmt) for _ in range(n)]

    def pull_record(self, r):
        r.num("I", "fFlags")
        cl_size = r.num("I", "clSize")
        rec_info = r.num("I", "pRecInfo")
        data_ref = r.num("I", "pRecord")
        if rec_info:
            n = r.num("I", "ulCntData conformance")
            r.num("I", "ulCntData")
            r.count(n, 1, "MInterfacePointer")
            r.take(n, "MInterfacePointer")
        if not data_ref:
            return None
        n = r.num("I", "max_count")
        if n != cl_size:
            raise NdrError("wireBRECORD clSize %d differs from max_count %d" % (cl_size, n))
        return self.element.parse(r.take(n, "pRecord"))

    def push(self, w, v, ctx):
        if v is None:
            w.num("I", 0)
            return
        w.num("I", w.referent())
        w.defer(lambda: self.push_array(w, v))

    def push_array(self, w, v):
        n = len(v)
        w.num("I", 1)
        w.num("H", 1)
        w.num("H", self.features)
        w.num("I", self.cb_elements)
        w.num("I", 0)
        w.num("I", self.sf_type)
        w.num("I", n)
        w.num("I", w.referent())
        w.num("I", n)
        w.num("i", 0)
        w.num("I", n)
        if self.sf_type == 0x08:
            for x in v:
                Bstr().push(w, x, None)
        elif self.sf_type == 0x24:
            for x in v:
                w.num("I", w.referent())
                w.defer(lambda x=x: self.push_record(w, x))
        elif self.sf_type == 0x10:
            w.put(bytes(v))
        else:
            for x in v:
                w.num(self.unit.fmt, x)

    def push_record(self, w, x):
        data = self.element.build(x)
        w.num("I", 0)
        w.num("I", len(data))
        w.num("I", 0)  # no IRecordInfo: the IDL names the type
        w.num("I", w.referent())
        w.num("I", len(data))
        w.put(data)
