/* netrum._csvrow: one transactions.csv line in C.
 *
 * transaction_line(tx, route, keep_query_values=False) returns exactly the text that
 * csv.writer(fh) (dialect "excel") writes for
 * netrum.export.csvfiles.transaction_row(tx, route, Privacy(keep_query_values)), i.e. without the
 * user's masks (the caller keeps the pure-Python path when there are masks). The pure-Python path is the
 * reference; tests/export/test_csvrow.py compares the two.
 *
 * The csv rule reproduced (CPython Modules/_csv.c, join_append_data, QUOTE_MINIMAL): a field is quoted
 * when it holds the delimiter ',', the quotechar '"' or a character of the lineterminator ("\r\n");
 * inside a quoted field '"' is doubled; fields are joined by ',' and the line ends with "\r\n". Any other
 * code point (NUL, non-latin-1, lone surrogates) is copied as is: the file object encodes the line.
 * A str field (subclasses included) is written as is, None as "", a float as repr(), anything else as
 * str(). The single-empty-field special case of the csv module cannot happen (a row has 32 fields).
 *
 * The common case (exact str, exact int within 64 bits) is formatted here; for anything else (huge or
 * non-int timestamps, a request-target holding one of "?#;@") the Python functions given to configure()
 * are called, so the two paths cannot drift apart.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#ifdef Py_T_OBJECT_EX
#define MEMBER_OBJECT_EX Py_T_OBJECT_EX
#else
#include <structmember.h>
#define MEMBER_OBJECT_EX T_OBJECT_EX
#endif

#define NCOLS 32

enum {
    F_CONN_ID, F_DEPTH, F_CLIENT_IP, F_CLIENT_PORT, F_SERVER_IP, F_SERVER_PORT,
    F_REQ_TS, F_REQ_END_TS, F_RESP_TS, F_RESP_END_TS,
    F_METHOD, F_HOST, F_URI, F_VERSION, F_STATUS, F_REASON, F_RESP_VERSION,
    F_REQ_HEADER_BYTES, F_REQ_BODY_BYTES, F_RESP_HEADER_BYTES, F_RESP_BODY_BYTES,
    F_REQ_CT, F_RESP_CT, F_USER_AGENT, F_INTERIM, F_TUNNEL_BYTES, F_NOTES, F_CONSUMER,
    NFIELDS
};

static const char *const field_names[NFIELDS] = {
    "conn_id", "depth", "client_ip", "client_port", "server_ip", "server_port",
    "request_ts_ns", "request_end_ts_ns", "response_ts_ns", "response_end_ts_ns",
    "method", "host", "uri", "version", "status", "reason", "response_version",
    "request_header_bytes", "request_body_bytes", "response_header_bytes", "response_body_bytes",
    "request_content_type", "response_content_type", "user_agent", "interim_statuses", "tunnel_bytes",
    "notes", "consumer",
};

/* Module state (single-phase init, one interpreter). */
static PyObject *names[NFIELDS];      /* interned attribute names */
static Py_ssize_t offsets[NFIELDS];   /* where the Transaction class's slots are, or -1 */
static PyTypeObject *tx_type;         /* the configured Transaction class, or NULL */
static PyObject *py_mask_target, *py_fmt_ts, *py_fmt_ms;
static PyObject *semicolon;

/* ',' '\r' '\n' -> 1 (quote the field), '"' -> 3 (quote it and double the quote). */
static unsigned char csv_special[256];
/* '?' '#' ';' '@': netrum.export.privacy._SPECIAL, the characters that make mask_target change a URI */
static unsigned char uri_special[256];

/* Nonzero when one of the 8 bytes of x equals the byte repeated in c (exact: no false positive on the
 * word as a whole, which is all the callers ask). */
static inline uint64_t
has_byte(uint64_t x, uint64_t c)
{
    uint64_t v = x ^ c;
    return (v - 0x0101010101010101ULL) & ~v & 0x8080808080808080ULL;
}

#define REPEAT8(ch) (0x0101010101010101ULL * (unsigned char)(ch))

/* Index of the first 8-byte word of s[0:n] that may hold one of the four bytes (n rounded down to a
 * multiple of 8 when none does); the caller scans the rest byte by byte. */
static inline Py_ssize_t
skip_words(const unsigned char *s, Py_ssize_t n, uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        if (has_byte(x, a) | has_byte(x, b) | has_byte(x, c) | has_byte(x, d))
            break;
    }
    return i;
}

/* The flags of ``table`` found in a latin-1 string: whole words without any of the four bytes are skipped,
 * the rest looked up byte by byte. */
static unsigned
scan_1byte(const unsigned char *c, Py_ssize_t n, const unsigned char *table, uint64_t a, uint64_t b, uint64_t d,
           uint64_t e)
{
    unsigned acc = 0;
    for (Py_ssize_t i = skip_words(c, n, a, b, d, e); i < n; i++)
        acc |= table[c[i]];
    return acc;
}

/* One output field: `len` code points of `kind` at `data`; `extra`: count of '"' to double. */
typedef struct {
    const void *data;
    Py_ssize_t len;
    Py_ssize_t extra;
    Py_UCS4 maxchar;
    int kind;
    int quoted;
} Piece;

/* Each number formatted here takes a slot of 24 bytes (the longest text is 20 characters: "-" and 19
 * digits), written backwards from the slot's end. A line has at most 15 numbers: 4 timestamps, 2
 * durations, 9 integers. Interim statuses have their own buffer (up to 16 of them; more: the general
 * path). */
#define SLOT 24
#define NUMBERS 15
#define INTERIM_MAX 16

typedef struct {
    PyObject *tmp[2 * NCOLS]; /* new references made while formatting (released at the end) */
    int ntmp;
    char *sp;                 /* next free slot */
    char scratch[NUMBERS * SLOT];
    char interim[INTERIM_MAX * SLOT];
} Work;

static void
set_empty(Piece *p)
{
    p->data = NULL;
    p->len = 0;
    p->extra = 0;
    p->maxchar = 127;
    p->kind = PyUnicode_1BYTE_KIND;
    p->quoted = 0;
}

static void
set_ascii(Piece *p, const char *s, Py_ssize_t n)
{
    p->data = s;
    p->len = n;
    p->extra = 0;
    p->maxchar = 127;
    p->kind = PyUnicode_1BYTE_KIND;
    p->quoted = 0; /* digits, '.', '-', ';' only */
}

/* A str (any subclass): its code points, scanned for the characters that make csv quote it. The str must
 * stay alive until the line is built (held by the fields array or by w->tmp). */
static int
set_str(Piece *p, PyObject *s)
{
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(s) < 0)
        return -1;
#endif
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    Py_ssize_t extra = 0;
    int quoted = 0;
    if (kind == PyUnicode_1BYTE_KIND) {
        const unsigned char *c = data;
        unsigned acc = scan_1byte(c, n, csv_special, REPEAT8(','), REPEAT8('"'), REPEAT8('\r'), REPEAT8('\n'));
        if (acc) {
            quoted = 1;
            if (acc & 2) {
                for (Py_ssize_t i = 0; i < n; i++)
                    extra += c[i] == '"';
            }
        }
    }
    else {
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_UCS4 ch = PyUnicode_READ(kind, data, i);
            if (ch < 256 && csv_special[ch]) {
                quoted = 1;
                extra += ch == '"';
            }
        }
    }
    p->data = data;
    p->len = n;
    p->extra = extra;
    p->maxchar = PyUnicode_MAX_CHAR_VALUE(s);
    p->kind = kind;
    p->quoted = quoted;
    return 0;
}

/* Keep a new reference until the end of the call (NULL: the error is already set). */
static PyObject *
keep(Work *w, PyObject *o)
{
    if (o != NULL) {
        assert(w->ntmp < (int)(sizeof(w->tmp) / sizeof(w->tmp[0])));
        w->tmp[w->ntmp++] = o;
    }
    return o;
}

/* A value given to csv.writer: str as is, None "", float repr(), else str(). */
static int
set_cell(Work *w, Piece *p, PyObject *v)
{
    if (PyUnicode_Check(v))
        return set_str(p, v);
    if (v == Py_None) {
        set_empty(p);
        return 0;
    }
    PyObject *s = keep(w, PyFloat_Check(v) ? PyObject_Repr(v) : PyObject_Str(v));
    if (s == NULL)
        return -1;
    if (!PyUnicode_Check(s)) {
        PyErr_SetString(PyExc_TypeError, "__str__ returned non-string");
        return -1;
    }
    return set_str(p, s);
}

static const char digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* Decimal digits of v, written backwards ending just before `end`; returns the first digit. */
static char *
utoa_back(char *end, unsigned long long v)
{
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        end -= 2;
        memcpy(end, digit_pairs + 2 * r, 2);
    }
    if (v >= 10) {
        end -= 2;
        memcpy(end, digit_pairs + 2 * v, 2);
    }
    else
        *--end = (char)('0' + v);
    return end;
}

/* Decimal text of v (with '-'), written backwards ending just before `end`; returns its start. */
static char *
lltoa_back(char *end, long long v)
{
    char *s = utoa_back(end, v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v);
    if (v < 0)
        *--s = '-';
    return s;
}

/* str(v) for an int v, into scratch. */
static void
put_ll(Work *w, Piece *p, long long v)
{
    assert(w->sp + SLOT <= w->scratch + sizeof(w->scratch));
    char *end = w->sp + SLOT;
    char *s = lltoa_back(end, v);
    w->sp = end;
    set_ascii(p, s, end - s);
}

/* An exact int within 64 bits: 1 and *out set; otherwise 0 (-1 on error). */
static int
as_ll(PyObject *v, long long *out)
{
    if (!PyLong_CheckExact(v))
        return 0;
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow)
        return 0;
    if (x == -1 && PyErr_Occurred())
        return -1;
    *out = x;
    return 1;
}

/* str(v) */
static int
set_int(Work *w, Piece *p, PyObject *v)
{
    long long x;
    int r = as_ll(v, &x);
    if (r < 0)
        return -1;
    if (r) {
        put_ll(w, p, x);
        return 0;
    }
    PyObject *s = keep(w, PyObject_Str(v));
    if (s == NULL)
        return -1;
    return set_cell(w, p, s);
}

/* "" if v is None else str(v) */
static int
set_opt_int(Work *w, Piece *p, PyObject *v)
{
    if (v == Py_None) {
        set_empty(p);
        return 0;
    }
    return set_int(w, p, v);
}

/* v or "" */
static int
set_or_empty(Work *w, Piece *p, PyObject *v)
{
    if (PyUnicode_CheckExact(v))
        return set_str(p, v);
    int t = PyObject_IsTrue(v);
    if (t < 0)
        return -1;
    if (!t) {
        set_empty(p);
        return 0;
    }
    return set_cell(w, p, v);
}

/* The result of a Python formatter called with one argument. */
static int
set_call(Work *w, Piece *p, PyObject *fn, PyObject *arg)
{
    PyObject *s = keep(w, PyObject_CallOneArg(fn, arg));
    if (s == NULL)
        return -1;
    return set_cell(w, p, s);
}

/* fmt_ts(v): epoch seconds with 6 decimals, the same string operations on str(ts_ns // 1000). */
static int
set_ts(Work *w, Piece *p, PyObject *v)
{
    if (v == Py_None) {
        set_empty(p);
        return 0;
    }
    long long ns;
    int r = as_ll(v, &ns);
    if (r < 0)
        return -1;
    if (!r)
        return set_call(w, p, py_fmt_ts, v);
    long long us = ns / 1000;
    if (ns % 1000 != 0 && ns < 0)
        us -= 1; /* floor division */
    int neg = us < 0;
    unsigned long long u = neg ? 0ULL - (unsigned long long)us : (unsigned long long)us;
    assert(w->sp + SLOT <= w->scratch + sizeof(w->scratch));
    char *end = w->sp + SLOT;
    char *s = end;
    if (u >= 1000000 || (neg && u >= 100000)) { /* len(str(us)) > 6: f"{us[:-6]}.{us[-6:]}" */
        unsigned long long frac = u % 1000000, head = u / 1000000;
        for (int i = 0; i < 3; i++) {
            s -= 2;
            memcpy(s, digit_pairs + 2 * (frac % 100), 2);
            frac /= 100;
        }
        *--s = '.';
        if (head)
            s = utoa_back(s, head);
        if (neg)
            *--s = '-';
    }
    else { /* f"0.{us:0>6}" (a '-' included: "0.0000-5") */
        s = lltoa_back(s, us);
        while (end - s < 6)
            *--s = '0';
        *--s = '.';
        *--s = '0';
    }
    w->sp = end;
    set_ascii(p, s, end - s);
    return 0;
}

/* "" if a is None or b is None else fmt_ms(a - b) */
static int
set_ms(Work *w, Piece *p, PyObject *a, PyObject *b)
{
    if (a == Py_None || b == Py_None) {
        set_empty(p);
        return 0;
    }
    long long x, y, delta;
    int ra = as_ll(a, &x);
    if (ra < 0)
        return -1;
    int rb = ra ? as_ll(b, &y) : 0;
    if (rb < 0)
        return -1;
    if (!ra || !rb || __builtin_sub_overflow(x, y, &delta)) {
        PyObject *d = PyNumber_Subtract(a, b);
        if (d == NULL)
            return -1;
        int rc = set_call(w, p, py_fmt_ms, d);
        Py_DECREF(d);
        return rc;
    }
    /* f"{sign}{us // 1000}.{us % 1000:03d}" with us = abs(delta) // 1000 */
    unsigned long long ua = delta < 0 ? 0ULL - (unsigned long long)delta : (unsigned long long)delta;
    unsigned long long us = ua / 1000;
    unsigned ms_frac = (unsigned)(us % 1000);
    assert(w->sp + SLOT <= w->scratch + sizeof(w->scratch));
    char *end = w->sp + SLOT;
    char *s = end;
    *--s = (char)('0' + ms_frac % 10);
    *--s = (char)('0' + ms_frac / 10 % 10);
    *--s = (char)('0' + ms_frac / 100);
    *--s = '.';
    s = utoa_back(s, us / 1000);
    if (delta < 0)
        *--s = '-';
    w->sp = end;
    set_ascii(p, s, end - s);
    return 0;
}

/* ";".join(map(str, v)) if v else "" */
static int
set_interim(Work *w, Piece *p, PyObject *v)
{
    if (PyTuple_CheckExact(v)) {
        Py_ssize_t n = PyTuple_GET_SIZE(v);
        if (n == 0) {
            set_empty(p);
            return 0;
        }
        if (n <= INTERIM_MAX) { /* small exact ints: formatted here */
            char *d = w->interim;
            char *q = d;
            Py_ssize_t i;
            for (i = 0; i < n; i++) {
                long long x;
                int r = as_ll(PyTuple_GET_ITEM(v, i), &x);
                if (r < 0)
                    return -1;
                if (!r)
                    break;
                if (i)
                    *q++ = ';';
                char buf[SLOT];
                char *end = buf + SLOT;
                for (char *s = lltoa_back(end, x); s < end; )
                    *q++ = *s++;
            }
            if (i == n) {
                set_ascii(p, d, q - d);
                return 0;
            }
        }
    }
    int t = PyObject_IsTrue(v);
    if (t < 0)
        return -1;
    if (!t) {
        set_empty(p);
        return 0;
    }
    PyObject *seq = PySequence_Fast(v, "interim_statuses must be iterable");
    if (seq == NULL)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject *strs = PyList_New(n);
    if (strs == NULL) {
        Py_DECREF(seq);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *s = PyObject_Str(PySequence_Fast_GET_ITEM(seq, i));
        if (s == NULL) {
            Py_DECREF(strs);
            Py_DECREF(seq);
            return -1;
        }
        PyList_SET_ITEM(strs, i, s);
    }
    Py_DECREF(seq);
    PyObject *joined = keep(w, PyUnicode_Join(semicolon, strs));
    Py_DECREF(strs);
    if (joined == NULL)
        return -1;
    return set_cell(w, p, joined);
}

/* ";".join(v) */
static int
set_notes(Work *w, Piece *p, PyObject *v)
{
    if (PyTuple_CheckExact(v)) {
        Py_ssize_t n = PyTuple_GET_SIZE(v);
        if (n == 0) {
            set_empty(p);
            return 0;
        }
        if (n == 1 && PyUnicode_CheckExact(PyTuple_GET_ITEM(v, 0)))
            return set_str(p, PyTuple_GET_ITEM(v, 0));
    }
    PyObject *joined = keep(w, PyUnicode_Join(semicolon, v));
    if (joined == NULL)
        return -1;
    return set_cell(w, p, joined);
}

/* (tx.uri or "") with its query values etc. masked unless keep_query_values (mask_target) */
static int
set_uri(Work *w, Piece *p, PyObject *v, int keep_query_values)
{
    if (PyUnicode_CheckExact(v)) {
        if (keep_query_values)
            return set_str(p, v);
#if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(v) < 0)
            return -1;
#endif
        Py_ssize_t n = PyUnicode_GET_LENGTH(v);
        int kind = PyUnicode_KIND(v);
        const void *data = PyUnicode_DATA(v);
        int special = 0;
        if (kind == PyUnicode_1BYTE_KIND) {
            special = scan_1byte(data, n, uri_special, REPEAT8('?'), REPEAT8('#'), REPEAT8(';'), REPEAT8('@')) != 0;
        }
        else {
            for (Py_ssize_t i = 0; i < n && !special; i++) {
                Py_UCS4 ch = PyUnicode_READ(kind, data, i);
                special = ch < 256 && uri_special[ch];
            }
        }
        if (!special) /* also the empty string */
            return set_str(p, v);
        return set_call(w, p, py_mask_target, v);
    }
    int t = PyObject_IsTrue(v);
    if (t < 0)
        return -1;
    if (!t) {
        set_empty(p);
        return 0;
    }
    if (keep_query_values)
        return set_cell(w, p, v);
    return set_call(w, p, py_mask_target, v);
}

/* Copy one field into the line at pos (quotes around it and doubled inside when needed). */
static Py_ssize_t
put_piece(int okind, void *odata, Py_ssize_t pos, const Piece *p)
{
    if (p->quoted)
        PyUnicode_WRITE(okind, odata, pos++, '"');
    if (p->len > 0) {
        if (p->kind == okind && p->extra == 0) {
            memcpy((char *)odata + pos * okind, p->data, (size_t)(p->len * okind));
            pos += p->len;
        }
        else if (okind == PyUnicode_1BYTE_KIND) { /* a latin-1 field holding '"' */
            const Py_UCS1 *s = p->data;
            Py_UCS1 *d = (Py_UCS1 *)odata + pos;
            for (Py_ssize_t i = 0; i < p->len; i++) {
                if (s[i] == '"')
                    *d++ = '"';
                *d++ = s[i];
            }
            pos = d - (Py_UCS1 *)odata;
        }
        else {
            for (Py_ssize_t i = 0; i < p->len; i++) {
                Py_UCS4 ch = PyUnicode_READ(p->kind, p->data, i);
                if (ch == '"')
                    PyUnicode_WRITE(okind, odata, pos++, '"');
                PyUnicode_WRITE(okind, odata, pos++, ch);
            }
        }
    }
    if (p->quoted)
        PyUnicode_WRITE(okind, odata, pos++, '"');
    return pos;
}

/* The Transaction's fields as new references in v; on failure (an exception set) the entries not read
 * are NULL. */
static int
get_fields(PyObject *tx, PyObject **v)
{
    int exact = tx_type != NULL && Py_IS_TYPE(tx, tx_type);
    for (int i = 0; i < NFIELDS; i++) {
        /* exactly the configured class: its slots, read where they are */
        PyObject *o = exact && offsets[i] >= 0 ? *(PyObject **)((char *)tx + offsets[i]) : NULL;
        if (o != NULL) {
            Py_INCREF(o);
            v[i] = o;
        }
        else if ((v[i] = PyObject_GetAttr(tx, names[i])) == NULL) { /* an unset slot: AttributeError */
            for (int j = i + 1; j < NFIELDS; j++)
                v[j] = NULL;
            return -1;
        }
    }
    return 0;
}

static PyObject *
transaction_line(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 2 || nargs > 3) {
        PyErr_Format(PyExc_TypeError, "transaction_line expected 2 or 3 arguments, got %zd", nargs);
        return NULL;
    }
    if (py_mask_target == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "netrum._csvrow.configure() was not called");
        return NULL;
    }
    int keep_query_values = 0;
    if (nargs == 3 && (keep_query_values = PyObject_IsTrue(args[2])) < 0)
        return NULL;
    PyObject *tx = args[0], *route = args[1];
    PyObject *v[NFIELDS]; /* filled by get_fields */
    PyObject *result = NULL;
    Piece pc[NCOLS];
    Work w;
    w.ntmp = 0;
    w.sp = w.scratch;

    if (get_fields(tx, v) < 0)
        goto done;
    if (set_ts(&w, &pc[0], v[F_REQ_TS]) < 0
        || set_ts(&w, &pc[1], v[F_REQ_END_TS]) < 0
        || set_ts(&w, &pc[2], v[F_RESP_TS]) < 0
        || set_ts(&w, &pc[3], v[F_RESP_END_TS]) < 0
        || set_cell(&w, &pc[4], v[F_CLIENT_IP]) < 0
        || set_int(&w, &pc[5], v[F_CLIENT_PORT]) < 0
        || set_cell(&w, &pc[6], v[F_SERVER_IP]) < 0
        || set_int(&w, &pc[7], v[F_SERVER_PORT]) < 0
        || set_cell(&w, &pc[8], v[F_CONN_ID]) < 0
        || set_int(&w, &pc[9], v[F_DEPTH]) < 0
        || set_or_empty(&w, &pc[10], v[F_METHOD]) < 0
        || set_or_empty(&w, &pc[11], v[F_HOST]) < 0
        || set_uri(&w, &pc[12], v[F_URI], keep_query_values) < 0
        || set_cell(&w, &pc[13], route) < 0)
        goto done;
    set_empty(&pc[14]); /* operation_id: filled in by rewrite_routes */
    if (set_or_empty(&w, &pc[15], v[F_VERSION]) < 0
        || set_opt_int(&w, &pc[16], v[F_STATUS]) < 0
        || set_or_empty(&w, &pc[17], v[F_REASON]) < 0
        || set_or_empty(&w, &pc[18], v[F_RESP_VERSION]) < 0
        || set_opt_int(&w, &pc[19], v[F_REQ_BODY_BYTES]) < 0
        || set_opt_int(&w, &pc[20], v[F_RESP_BODY_BYTES]) < 0
        || set_opt_int(&w, &pc[21], v[F_REQ_HEADER_BYTES]) < 0
        || set_opt_int(&w, &pc[22], v[F_RESP_HEADER_BYTES]) < 0
        || set_ms(&w, &pc[23], v[F_RESP_TS], v[F_REQ_END_TS]) < 0
        || set_ms(&w, &pc[24], v[F_RESP_END_TS], v[F_REQ_TS]) < 0
        || set_or_empty(&w, &pc[25], v[F_REQ_CT]) < 0
        || set_or_empty(&w, &pc[26], v[F_RESP_CT]) < 0
        || set_or_empty(&w, &pc[27], v[F_USER_AGENT]) < 0
        || set_interim(&w, &pc[28], v[F_INTERIM]) < 0
        || set_int(&w, &pc[29], v[F_TUNNEL_BYTES]) < 0
        || set_notes(&w, &pc[30], v[F_NOTES]) < 0)
        goto done;
    {
        /* tx.consumer or tx.client_ip */
        PyObject *c = v[F_CONSUMER];
        int t = PyUnicode_CheckExact(c) ? PyUnicode_GET_LENGTH(c) > 0 : PyObject_IsTrue(c);
        if (t < 0 || set_cell(&w, &pc[31], t ? c : v[F_CLIENT_IP]) < 0)
            goto done;
    }

    {
        Py_ssize_t total = (NCOLS - 1) + 2; /* commas, "\r\n" */
        Py_UCS4 maxchar = 127;
        for (int i = 0; i < NCOLS; i++) {
            total += pc[i].len + pc[i].extra + 2 * pc[i].quoted;
            if (pc[i].maxchar > maxchar)
                maxchar = pc[i].maxchar;
        }
        result = PyUnicode_New(total, maxchar);
        if (result == NULL)
            goto done;
        int okind = PyUnicode_KIND(result);
        void *odata = PyUnicode_DATA(result);
        Py_ssize_t pos = 0;
        if (okind == PyUnicode_1BYTE_KIND) { /* every field latin-1: the common case */
            Py_UCS1 *d = odata;
            for (int i = 0; i < NCOLS; i++) {
                const Piece *p = &pc[i];
                if (i)
                    *d++ = ',';
                if (p->quoted || p->len > 16) {
                    d = (Py_UCS1 *)odata + put_piece(okind, odata, d - (Py_UCS1 *)odata, p);
                }
                else { /* short: two overlapping fixed-size copies beat a memcpy call */
                    const Py_UCS1 *s = p->data;
                    Py_ssize_t n = p->len;
                    if (n >= 8) {
                        memcpy(d, s, 8);
                        memcpy(d + n - 8, s + n - 8, 8);
                    }
                    else if (n >= 4) {
                        memcpy(d, s, 4);
                        memcpy(d + n - 4, s + n - 4, 4);
                    }
                    else {
                        for (Py_ssize_t j = 0; j < n; j++)
                            d[j] = s[j];
                    }
                    d += n;
                }
            }
            *d++ = '\r';
            *d++ = '\n';
            pos = d - (Py_UCS1 *)odata;
        }
        else {
            for (int i = 0; i < NCOLS; i++) {
                if (i)
                    PyUnicode_WRITE(okind, odata, pos++, ',');
                pos = put_piece(okind, odata, pos, &pc[i]);
            }
            PyUnicode_WRITE(okind, odata, pos++, '\r');
            PyUnicode_WRITE(okind, odata, pos++, '\n');
        }
        assert(pos == total);
    }

done:
    for (int i = 0; i < NFIELDS; i++)
        Py_XDECREF(v[i]);
    for (int i = 0; i < w.ntmp; i++)
        Py_DECREF(w.tmp[i]);
    return result;
}

/* configure(transaction_type, mask_target, fmt_ts, fmt_ms) */
static PyObject *
configure(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "configure expected 4 arguments, got %zd", nargs);
        return NULL;
    }
    if (!PyType_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "configure: transaction_type must be a class");
        return NULL;
    }
    for (int i = 1; i < 4; i++) {
        if (!PyCallable_Check(args[i])) {
            PyErr_SetString(PyExc_TypeError, "configure: mask_target, fmt_ts and fmt_ms must be callable");
            return NULL;
        }
    }
    /* The slots of a slotted class (member descriptors of object type): their offsets, read without the
     * attribute lookup for instances of exactly this class. Anything else (a property, a plain class
     * attribute): the generic getattr. */
    Py_ssize_t found[NFIELDS];
    for (int i = 0; i < NFIELDS; i++) {
        PyObject *d = PyObject_GetAttr(args[0], names[i]);
        if (d == NULL)
            return NULL;
        found[i] = -1;
        if (Py_IS_TYPE(d, &PyMemberDescr_Type)) {
            PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
            if (m->type == MEMBER_OBJECT_EX && m->offset > 0
                && PyType_IsSubtype((PyTypeObject *)args[0], PyDescr_TYPE(d)))
                found[i] = m->offset;
        }
        Py_DECREF(d);
    }
    memcpy(offsets, found, sizeof(offsets));
    Py_INCREF(args[0]);
    Py_XSETREF(tx_type, (PyTypeObject *)args[0]);
    Py_INCREF(args[1]);
    Py_XSETREF(py_mask_target, args[1]);
    Py_INCREF(args[2]);
    Py_XSETREF(py_fmt_ts, args[2]);
    Py_INCREF(args[3]);
    Py_XSETREF(py_fmt_ms, args[3]);
    Py_RETURN_NONE;
}

static PyMethodDef csvrow_methods[] = {
    {"transaction_line", (PyCFunction)(void (*)(void))transaction_line, METH_FASTCALL,
     "transaction_line(tx, route, keep_query_values=False) -> str\n\n"
     "The transactions.csv line (csv.writer, dialect excel, \"\\r\\n\" included) of\n"
     "transaction_row(tx, route, Privacy(keep_query_values)): user masks are not applied."},
    {"configure", (PyCFunction)(void (*)(void))configure, METH_FASTCALL,
     "configure(transaction_type, mask_target, fmt_ts, fmt_ms) -> None\n\n"
     "The Transaction class and the Python functions used for the uncommon values."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef csvrow_module = {
    PyModuleDef_HEAD_INIT, "_csvrow",
    "C formatting of transactions.csv lines (netrum.export.csvfiles).", -1, csvrow_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__csvrow(void)
{
    csv_special[','] = 1;
    csv_special['\r'] = 1;
    csv_special['\n'] = 1;
    csv_special['"'] = 3;
    uri_special['?'] = 1;
    uri_special['#'] = 1;
    uri_special[';'] = 1;
    uri_special['@'] = 1;
    for (int i = 0; i < NFIELDS; i++) {
        if (names[i] == NULL && (names[i] = PyUnicode_InternFromString(field_names[i])) == NULL)
            return NULL;
        offsets[i] = -1;
    }
    if (semicolon == NULL && (semicolon = PyUnicode_InternFromString(";")) == NULL)
        return NULL;
    return PyModule_Create(&csvrow_module);
}
