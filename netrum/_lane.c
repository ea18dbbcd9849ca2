/* netrum._lane: the compiled lane of `netrum analyze` (issue 6).
 *
 * The pure-Python analyzer (netrum/pipeline.py and below) is the reference. This module analyses, in C,
 * the TCP connections that stay on a narrow, fully specified path: a handshake (SYN, SYN-ACK) seen,
 * every segment in order, nothing lost, duplicated or retransmitted, no RST, strictly well-formed
 * HTTP/1.x heads (the parser's fast path: CRLF line ends, a known method, HTTP/1.0 or 1.1), bodies
 * framed by Content-Length or plain chunked coding, FIFO pairing. On that path the reference does
 * exactly what this file does, and the differential tests (tests/test_lane.py) hold the two to the
 * same bytes of output.
 *
 * Everything else is "tainted": the whole 4-tuple, for the whole capture, goes to the Python analyzer.
 * Two passes over a pcap or pcapng file (mmap'ed; pcapng blocks are read as capture/pcapfile.py reads them):
 *   1. scan(): walk every record, run the state machine below on every fast-path TCP frame, and mark the
 *      4-tuples that leave the path. Frames the fast decoder does not take are listed for Python to
 *      decode (their 4-tuples are tainted from there). A damaged file is read up to the damage, where
 *      capture/pcapfile.py stops reading it (the damage is reported through the reader: netrum/lane.py).
 *   2. run(): walk again; frames of clean 4-tuples are analysed here and their transactions built as
 *      netrum.records.Transaction objects and handed to the sink; every other frame goes to the Python
 *      Analyzer (partitioned mode), in capture order, with the packet clock it needs for its sweeps.
 *
 * Names of the rules come from netrum/flows/table.py, netrum/http/parser.py, netrum/http/connection.py
 * and netrum/http/framing.py; RFC sections are cited there.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define SECOND_NS 1000000000LL
#define MARGIN_NS (2 * SECOND_NS)       /* safety margin around the reference's once-a-second sweeps */
#define RELEASE_BYTES (32LL * 1024 * 1024)
/* L->pass: 1 marks the connections, 2 analyses; PASS_RECOUNT counts the capture again up to where an
 * interrupted pass 2 stopped (recount_capture). */
#define PASS_RECOUNT 3
/* The walk asks for every cache line this far ahead of the record it reads. The next record's place is
 * known only once this one's header is read, so a plain walk waits on memory at every record (about half
 * of a pass over a 1 GB capture on these machines, scripts/bench_stages); a stream of prefetches ahead of
 * it lets the memory system fetch in parallel. */
#define PREFETCH_AHEAD 16384
#define NONFAST_MAX (1LL << 21) /* frames listed for Python's decoder in pass 1 (48 bytes each) */
#define NF_FIELDS 6        /* (index, ts, offset, caplen, file, link type) per listed frame */
#define NEVER (-(1LL << 62))

/* TCP flags */
#define F_FIN 0x01
#define F_SYN 0x02
#define F_RST 0x04
#define F_ACK 0x10

/* ------------------------------------------------------------------ limits (netrum.limits.Limits) */
typedef struct {
    long long max_flows, idle_ns, linger_ns, max_header_bytes, max_headers, max_pending, max_uri;
} LaneLimits;

/* ------------------------------------------------------------------ keys and hash table */
typedef struct {
    uint8_t a[16], b[16]; /* lower endpoint first (address bytes, then port) */
    uint16_t pa, pb;
    uint8_t alen;         /* 4 or 16 */
} Key;

struct Flow;

typedef struct Tuple {
    Key key;
    uint64_t hash;
    int tainted;
    struct Flow *flow;           /* the current connection on this 4-tuple, or NULL */
    long long closed_clock;      /* packet clock when the last connection closed (NEVER if none) */
    long long last_clock;        /* packet clock at the last frame (tainted tuples: for the live count) */
    struct Tuple *lru_prev, *lru_next; /* live tuples by last activity (for idle taint and the live count) */
    int in_lru;
    struct Tuple *cl_prev, *cl_next;   /* closed connections still remembered by the reference, oldest first */
    int in_closed;
    int owner;                   /* the worker that analyses this 4-tuple (scale-out; 0 in one process) */
    long long start_idx;         /* frame that opened this incarnation: its id in the tainted set */
} Tuple;

/* A set of frame indexes (>= 1): the incarnations of 4-tuples given to Python, found by pass 1. */
typedef struct { long long *v; size_t cap, len; } IdxSet;

static int idxset_add(IdxSet *s, long long x) {
    if ((s->len + 1) * 2 >= s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 256;
        long long *nv = calloc(nc, sizeof(long long));
        if (!nv) return -1;
        for (size_t i = 0; i < s->cap; i++) {
            long long y = s->v[i];
            if (!y) continue;
            size_t j = (size_t)(y * 0x9E3779B97F4A7C15ULL) & (nc - 1);
            while (nv[j]) j = (j + 1) & (nc - 1);
            nv[j] = y;
        }
        free(s->v); s->v = nv; s->cap = nc;
    }
    size_t j = (size_t)(x * 0x9E3779B97F4A7C15ULL) & (s->cap - 1);
    while (s->v[j]) { if (s->v[j] == x) return 0; j = (j + 1) & (s->cap - 1); }
    s->v[j] = x; s->len++;
    return 0;
}

static int idxset_has(const IdxSet *s, long long x) {
    if (!s->cap) return 0;
    size_t j = (size_t)(x * 0x9E3779B97F4A7C15ULL) & (s->cap - 1);
    while (s->v[j]) { if (s->v[j] == x) return 1; j = (j + 1) & (s->cap - 1); }
    return 0;
}

typedef struct {
    Tuple **slots;
    size_t cap, len;
} Table;

static uint64_t key_hash(const Key *k) {
    uint64_t h = 1469598103934665603ULL;
    const uint8_t *p = (const uint8_t *)k;
    for (size_t i = 0; i < sizeof(Key); i++) { h ^= p[i]; h *= 1099511628211ULL; }
    h ^= h >> 29; h *= 0xbf58476d1ce4e5b9ULL; h ^= h >> 32;
    return h;
}

static int table_init(Table *t) {
    t->cap = 1024; t->len = 0;
    t->slots = calloc(t->cap, sizeof(Tuple *));
    return t->slots ? 0 : -1;
}

static Tuple *table_find(Table *t, const Key *k, uint64_t h) {
    size_t m = t->cap - 1, i = h & m;
    for (;;) {
        Tuple *e = t->slots[i];
        if (!e) return NULL;
        if (e->hash == h && memcmp(&e->key, k, sizeof(Key)) == 0) return e;
        i = (i + 1) & m;
    }
}

static int table_grow(Table *t) {
    size_t ncap = t->cap * 2, m = ncap - 1;
    Tuple **ns = calloc(ncap, sizeof(Tuple *));
    if (!ns) return -1;
    for (size_t j = 0; j < t->cap; j++) {
        Tuple *e = t->slots[j];
        if (!e) continue;
        size_t i = e->hash & m;
        while (ns[i]) i = (i + 1) & m;
        ns[i] = e;
    }
    free(t->slots);
    t->slots = ns; t->cap = ncap;
    return 0;
}

static int table_insert(Table *t, Tuple *e) {
    if ((t->len + 1) * 4 >= t->cap * 3 && table_grow(t) < 0) return -1;
    size_t m = t->cap - 1, i = e->hash & m;
    while (t->slots[i]) i = (i + 1) & m;
    t->slots[i] = e; t->len++;
    return 0;
}

static void table_remove(Table *t, Tuple *e) {
    size_t m = t->cap - 1, i = e->hash & m;
    while (t->slots[i] != e) i = (i + 1) & m;
    t->slots[i] = NULL; t->len--;
    /* backward-shift deletion (linear probing) */
    size_t j = i;
    for (;;) {
        j = (j + 1) & m;
        Tuple *x = t->slots[j];
        if (!x) break;
        size_t home = x->hash & m;
        /* x may move to i if i lies cyclically in [home, j) */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            t->slots[i] = x; t->slots[j] = NULL; i = j;
        }
    }
}

/* ------------------------------------------------------------------ HTTP state per direction */
enum { H_HEAD, H_LENGTH, H_CSIZE, H_CSIZE_LF, H_CDATA, H_CEND_CR, H_CEND_LF, H_TRAIL_CR, H_TRAIL_LF, H_DEAD };

typedef struct {
    uint32_t nxt;          /* next expected sequence number */
    int fin;               /* FIN seen (the direction is over) */
    int st;                /* parser state */
    unsigned long long remaining, body, csize;
    int cdigits;
    long long fed;         /* stream offset after the bytes given so far */
    long long msg_off;     /* stream offset of the current message's first byte */
    long long msg_ts;      /* timestamp of the segment that carried the current message's first byte */
    long long last_ts;     /* timestamp of the last segment given to the parser (parser.last_ts) */
    uint8_t *hb; size_t hlen, hcap; /* an incomplete head */
    long long ack_first;   /* client: server-stream offset acknowledged when the current head began */
} Dir;

typedef struct {
    long long req_ts, req_end_ts, resp_ts, resp_end_ts;
    long long req_head, req_body, resp_head, resp_body, req_ack;
    int depth, status, req_done, resp_done, is_head, has_resp;
    int notes;             /* end of capture: NOTE_* (connection.py appends them in this order) */
    PyObject *method, *host, *uri, *version, *ua, *req_ct; /* pass 2 only */
    PyObject *reason, *resp_version, *resp_ct;
    PyObject *consumer;    /* pass 2, consumer options: Transaction.consumer (NULL: None, the client) */
} Ex;

enum { S_SYN, S_EST, S_CLOSED };

typedef struct Flow {
    int state;
    int client;            /* 0: the tuple's endpoint a is the client; 1: endpoint b */
    uint32_t isn_c, sbase;     /* client ISN; server ISN + 1 (the server stream's offset 0) */
    long long first_ts, first_clock, last_clock;
    Dir d[2];              /* 0 client, 1 server */
    Ex *ex; int ex_cap, ex_head, ex_len; /* exchanges not yet emitted, in depth order */
    int pend;              /* index (from ex_head) of the oldest exchange waiting for its response */
    int depth;
    PyObject *info;        /* pass 2: (conn_id, client_ip, client_port, server_ip, server_port) */
} Flow;

/* ------------------------------------------------------------------ the Lane object */
/* A pcapng interface (Interface Description Block, pcapng section 4.2): ts = ticks * num / den + off_ns. */
typedef struct {
    int linktype;
    unsigned long long num, den;
    long long off_ns, max_caplen;
} NgIf;

/* One capture file (pcap or pcapng, mmap'ed); several are read one after the other (rotated captures). */
typedef struct {
    Py_buffer view;
    int have_view;
    Py_ssize_t data_off;
    int linktype, swapped;
    long long ns_unit, max_caplen;
    long long min_ts, max_ts; /* pass 1: the file's timestamps (the files must not overlap in time) */
    int ng;                   /* pcapng (capture.pcapfile._iter_pcapng's rules), else classic pcap */
    int ng_swapped;           /* pcapng: the current section's byte order is not the machine's */
    NgIf *ifs; int nif, cap_if; /* pcapng: the current section's interfaces */
    long long ng_last_ts;     /* pcapng: the previous packet's time in this file (-1: none; SPB) */
    long long packets;        /* pass 1: packets read from this file */
    int dmg;                  /* pass 1: where the reader stops reading this file (DMG_*), 0 if nowhere */
    long long dmg_at, dmg_val; /* the damaged record's or block's offset; the value the report names */
} File;

/* Damage that ends the reading of one file, as capture.pcapfile reports it (report_truncated /
 * report_corrupt with these words, netrum/lane.py): the lane reads up to it, as the reader does. */
enum { DMG_NONE, DMG_TRUNCATED, DMG_CAPLEN, DMG_BOM, DMG_BLOCK_LEN, DMG_BLOCK_LENS, DMG_PB_SHORT, DMG_IF_UNDECLARED,
       DMG_SPB_NO_IF, DMG_IDB_SHORT };

#define MAX_FILES 4096

typedef struct {
    PyObject_HEAD
    File *files; int nfiles;
    int cur_file;          /* the file being walked */
    long long done_bytes;  /* bytes of the files walked before it (progress) */
    const uint8_t *base;
    Py_ssize_t size, data_off;
    int swapped;
    long long ns_unit, max_caplen;
    LaneLimits lim;
    Table tab;
    Tuple lru;             /* sentinel of the live list */
    Tuple closed;          /* sentinel of the closed list (FlowTable._closed) */
    long long sweep_next;  /* the reference's next lifecycle sweep (FlowTable._sweep, once a second) */
    long long last_sweep;  /* packet time of the last one */
    long long *events; long long events_n, events_i; /* (frame index, ts) of TCP frames only Python decodes */
    Key *event_keys;
    int part_k, part_n;    /* this worker and the number of workers (scale-out by 4-tuple) */
    uint8_t *port_bits;    /* --port: the server ports (a bit per port), or NULL for no port filter */
    uint8_t (*addrs)[16]; int *addr_lens; int n_addrs, have_addrs; /* --server: the server addresses */
    long long c_ignored;   /* pass 2: segments the filters leave out (flow_ignored_filter) */
    /* consumer options (netrum.http.consumer.ConsumerConfig) */
    char cons_header[128]; int cons_header_len; /* the identity field's lowercase name, or length 0 */
    int cons_fwd;          /* trusted proxies given: Forwarded, X-Forwarded-For and X-Real-IP are read */
    int redact_host, redact_ua, redact_ct;
    PyObject *consumer_of; /* (client_ip, ident, forwarded, xff, real_ip) -> (consumer, bad) */
    long long c_bad_forwarded;
    uint8_t gate[256];     /* bytes a field line must start with to be one the lane reads (either case) */
    long long load[64];    /* TCP segments given to each worker so far (pipeline.FlowAssigner's rule) */
    IdxSet tainted;        /* incarnations given to Python (start frame indexes), from pass 1 */
    long long live;        /* tuples in the live list */
    long long max_live;
    int pass;              /* 1 or 2 */
    long long cclock;      /* max timestamp over fast-path TCP frames (the lane's own decisions) */
    /* pass 1 results */
    long long frames, packets, wire, cut, cut_bytes, ooo, first_ts, last_ts;
    long long frames_read, recount_upto; /* frames read by the walk so far; where PASS_RECOUNT stops */
    long long nonfast_n, nonfast_cap; long long *nonfast; /* (index, ts, offset, caplen, cclock) x n */
    int damaged;           /* the lane stands aside: 3 too many frames for Python, 4 pcapng beyond it */
    long long ng_unsupported; /* pass 1: pcapng blocks of other types (capture_unsupported_block) */
    int linktypes[64]; int n_linktypes; /* pass 1: the link types of the frames, in order of appearance */
    /* pass 2 counters (the lane's own frames and connections) */
    long long c_vxlan, c_geneve, c_gre, c_erspan;
    long long c_tcp_packets, c_tcp_payload, c_padding, c_opened, c_closed_fin, c_open_at_end, c_reused;
    long long c_requests, c_responses, c_transactions;
    long long flows_lane, tuples_tainted, frames_python;
    /* pass 2 callbacks */
    PyObject *py_frame, *py_tick, *sink, *conninfo, *tx_type, *progress;
    PyObject *tx_class;    /* netrum.records.Transaction (the end batch is always made of them) */
    PyObject *end_list;    /* pass 2: the lane's transactions closed by the end of the capture */
    long long c_truncated, c_no_response;
    long long seq;         /* packed mode with keys: the lane's own sequence numbers */
    int packed;            /* packed mode: transactions as bytes (pack_tx), a buffer at a time */
    uint8_t *pk; size_t pk_len, pk_cap;
    PyObject *again[8];    /* pass 2: the last string of each repeating field (latin1_again) */
    Py_ssize_t offs[29];   /* Transaction slot offsets, in field order */
    long long next_sweep;  /* the Python analyzer's next sweep time */
    long long pclock;      /* the packet clock shared with the Python analyzer */
    int error;             /* 1: a Python exception is set; 2: out of memory */
    long long cur_idx;     /* the frame being analysed (emission keys) */
    char taint_reason[64];
    const char *reasons[32]; long long reason_n[32]; /* why 4-tuples were given to Python (stats) */
} Lane;

/* Transaction fields, in netrum.records order */
enum {
    T_CONN, T_DEPTH, T_CIP, T_CPORT, T_SIP, T_SPORT, T_REQ_TS, T_REQ_END, T_RESP_TS, T_RESP_END,
    T_METHOD, T_HOST, T_URI, T_VERSION, T_STATUS, T_REASON, T_RESP_VERSION, T_REQ_HEAD, T_REQ_BODY,
    T_RESP_HEAD, T_RESP_BODY, T_REQ_CT, T_RESP_CT, T_UA, T_INTERIM, T_TUNNEL, T_NOTES, T_CONSUMER, T_NFIELDS
};

static inline int32_t seq_diff(uint32_t a, uint32_t b) { return (int32_t)(a - b); }

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint16_t rd16le(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t rd32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint32_t rdh32(const Lane *L, const uint8_t *p) {
    uint32_t v; memcpy(&v, p, 4);
    return L->swapped ? __builtin_bswap32(v) : v;
}

/* ------------------------------------------------------------------ flows */
static void ex_release(Ex *e) {
    Py_CLEAR(e->method); Py_CLEAR(e->host); Py_CLEAR(e->uri); Py_CLEAR(e->version); Py_CLEAR(e->ua);
    Py_CLEAR(e->req_ct); Py_CLEAR(e->reason); Py_CLEAR(e->resp_version); Py_CLEAR(e->resp_ct);
    Py_CLEAR(e->consumer);
}

static void flow_free(Flow *f) {
    if (!f) return;
    for (int i = 0; i < f->ex_len; i++) ex_release(&f->ex[(f->ex_head + i) % f->ex_cap]);
    free(f->ex);
    free(f->d[0].hb); free(f->d[1].hb);
    Py_XDECREF(f->info);
    free(f);
}

static void lru_unlink(Lane *L, Tuple *t) {
    if (!t->in_lru) return;
    t->lru_prev->lru_next = t->lru_next; t->lru_next->lru_prev = t->lru_prev;
    t->in_lru = 0; L->live--;
}

static void lru_touch(Lane *L, Tuple *t) {
    if (t->in_lru) {
        t->lru_prev->lru_next = t->lru_next; t->lru_next->lru_prev = t->lru_prev;
    } else {
        t->in_lru = 1; L->live++;
        if (L->live > L->max_live) L->max_live = L->live;
    }
    t->lru_prev = L->lru.lru_prev; t->lru_next = &L->lru;
    L->lru.lru_prev->lru_next = t; L->lru.lru_prev = t;
}

static void closed_unlink(Tuple *t) {
    if (!t->in_closed) return;
    t->cl_prev->cl_next = t->cl_next; t->cl_next->cl_prev = t->cl_prev;
    t->in_closed = 0;
}

static void taint(Lane *L, Tuple *t, const char *why) {
    if (t->tainted) return;
    t->tainted = 1;
    if (idxset_add(&L->tainted, t->start_idx) < 0) L->error = 2; /* out of memory: reported by walk() */
    if (t->owner != L->part_k) return;
    L->tuples_tainted++;
    if (!L->taint_reason[0]) snprintf(L->taint_reason, sizeof L->taint_reason, "%s", why);
    for (int i = 0; i < 32; i++) {
        if (!L->reasons[i]) L->reasons[i] = why;
        if (L->reasons[i] == why || strcmp(L->reasons[i], why) == 0) { L->reason_n[i]++; break; }
    }
    closed_unlink(t);
    flow_free(t->flow);
    t->flow = NULL;
}

/* How long a tuple may be silent before the reference could have dropped or expired it. */
static long long forget_ns(const Lane *L) { return L->lim.idle_ns + L->lim.linger_ns + 2 * MARGIN_NS; }

static void closed_append(Lane *L, Tuple *t) {
    closed_unlink(t);
    t->in_closed = 1;
    t->cl_prev = L->closed.cl_prev; t->cl_next = &L->closed;
    L->closed.cl_prev->cl_next = t; L->closed.cl_prev = t;
}

/* A clean tuple the reference no longer remembers: dropped from the lane's tables too. */
static void drop_tuple(Lane *L, Tuple *t) {
    lru_unlink(L, t);
    closed_unlink(t);
    flow_free(t->flow);
    t->flow = NULL;
    table_remove(&L->tab, t);
    free(t);
}

/* The reference's once-a-second lifecycle sweep (FlowTable._sweep), at the same packet times: closed
 * records are forgotten after their linger (exactly: a SYN before that is a reuse, after it a new flow);
 * this worker's clean connections silent for nearly the idle timeout are tainted (the reference expires
 * them after it: flow_expired_idle); a 4-tuple silent beyond every timer of the reference (an incarnation
 * is over: the reference remembers nothing of it) leaves the tables, and its next frame opens a new
 * incarnation with a new owner, as pipeline.FlowAssigner forgets owners. */
static void do_sweep(Lane *L) {
    long long now = L->cclock;
    L->sweep_next = now + SECOND_NS;
    while (L->closed.cl_next != &L->closed) {
        Tuple *t = L->closed.cl_next;
        if (now - t->closed_clock < L->lim.linger_ns) break;
        closed_unlink(t);
        flow_free(t->flow);
        t->flow = NULL;
    }
    L->last_sweep = now;
    /* FlowTable._sweep expires a live flow exactly when its last packet time <= now - idle timeout (its
     * LRU is in touch order and touch_ts <= last_ts, so the scan never stops before such a flow). */
    Tuple *t = L->lru.lru_next;
    while (t != &L->lru) {
        Tuple *next = t->lru_next;
        long long quiet = now - t->last_clock;
        if (quiet < L->lim.idle_ns) break;
        if (t->flow && t->flow->state != S_CLOSED && !t->tainted) taint(L, t, "idle");
        else if (quiet >= forget_ns(L)) drop_tuple(L, t);
        t = next;
    }
}

/* The packet clock moved to ts (a TCP segment the flow table takes): sweep when due. */
static void clock_to(Lane *L, long long ts) {
    if (ts > L->cclock) L->cclock = ts;
    if (L->cclock >= L->sweep_next) do_sweep(L);
}

static Ex *ex_push(Flow *f) {
    if (f->ex_len == f->ex_cap) {
        int ncap = f->ex_cap ? f->ex_cap * 2 : 4;
        Ex *n = malloc(sizeof(Ex) * ncap);
        if (!n) return NULL;
        for (int i = 0; i < f->ex_len; i++) n[i] = f->ex[(f->ex_head + i) % f->ex_cap];
        free(f->ex);
        f->ex = n; f->ex_cap = ncap; f->ex_head = 0;
    }
    Ex *e = &f->ex[(f->ex_head + f->ex_len) % f->ex_cap];
    f->ex_len++;
    memset(e, 0, sizeof *e);
    e->req_end_ts = e->resp_ts = e->resp_end_ts = NEVER;
    return e;
}

static inline Ex *ex_at(Flow *f, int i) { return &f->ex[(f->ex_head + i) % f->ex_cap]; }

/* ------------------------------------------------------------------ emitting transactions */
static PyObject *ts_or_none(long long v) {
    if (v == NEVER) Py_RETURN_NONE;
    return PyLong_FromLongLong(v);
}

/* Packed mode: hand the packed transactions to the sink (before anything else can emit). */
static int flush_pending(Lane *L) {
    if (L->packed) {
        if (!L->pk_len) return 0;
        PyObject *b = PyBytes_FromStringAndSize((const char *)L->pk, (Py_ssize_t)L->pk_len);
        if (!b) return -1;
        L->pk_len = 0;
        PyObject *r = PyObject_CallOneArg(L->sink, b);
        Py_DECREF(b);
        if (!r) return -1;
        Py_DECREF(r);
    }
    return 0;
}

#define NOTE_TRUNC_REQ 1
#define NOTE_TRUNC_RESP 2
#define NOTE_NO_RESPONSE 4

static PyObject *notes_tuple(int notes) {
    static const char *const names[] = {"truncated_request", "truncated_response", "no_response"};
    PyObject *t = PyTuple_New(__builtin_popcount((unsigned)notes));
    if (!t) return NULL;
    Py_ssize_t k = 0;
    for (int i = 0; i < 3; i++) {
        if (!(notes & (1 << i))) continue;
        PyObject *u = PyUnicode_InternFromString(names[i]);
        if (!u) { Py_DECREF(t); return NULL; }
        PyTuple_SET_ITEM(t, k++, u);
    }
    return t;
}

static PyObject *none_ref(void) { Py_INCREF(Py_None); return Py_None; }

/* ------------------------------------------------------------------ the packed hand-over
 * One transaction as bytes, for another process (netrum/scale/stream.py), instead of a tuple that marshal
 * would copy again: in field order, integers as 8 bytes (machine order: the same machine reads them),
 * NEVER for None, strings as a 4-byte length (PK_NONE for None; PK_UTF8 set: UTF-8 bytes, else each
 * character one byte, as a latin-1 string holds them) then the bytes. ``unpack_transactions`` reads it. */
#define PK_NONE 0xFFFFFFFFu
#define PK_UTF8 0x80000000u
#define PK_FLUSH_BYTES (64 * 1024) /* a message: several fit in the pipe (stream.py widens it) */

static int pk_room(Lane *L, size_t n) {
    if (L->pk_len + n <= L->pk_cap) return 0;
    size_t nc = L->pk_cap ? L->pk_cap : 65536;
    while (nc < L->pk_len + n) nc *= 2;
    uint8_t *b = realloc(L->pk, nc);
    if (!b) { PyErr_NoMemory(); return -1; }
    L->pk = b; L->pk_cap = nc;
    return 0;
}

static int pk_i64(Lane *L, long long v) {
    if (pk_room(L, 8) < 0) return -1;
    memcpy(L->pk + L->pk_len, &v, 8);
    L->pk_len += 8;
    return 0;
}

static int pk_str(Lane *L, PyObject *o) {
    uint32_t n;
    const char *data;
    if (!o || o == Py_None) { n = PK_NONE; data = NULL; }
    else if (!PyUnicode_Check(o)) { PyErr_SetString(PyExc_TypeError, "lane: a string field is not a str"); return -1; }
    else if (PyUnicode_KIND(o) == PyUnicode_1BYTE_KIND) { n = (uint32_t)PyUnicode_GET_LENGTH(o); data = (const char *)PyUnicode_1BYTE_DATA(o); }
    else {
        Py_ssize_t len;
        data = PyUnicode_AsUTF8AndSize(o, &len);
        if (!data) return -1;
        n = (uint32_t)len | PK_UTF8;
    }
    size_t len = n == PK_NONE ? 0 : (n & ~PK_UTF8);
    if (pk_room(L, 4 + len) < 0) return -1;
    memcpy(L->pk + L->pk_len, &n, 4);
    if (len) memcpy(L->pk + L->pk_len + 4, data, len);
    L->pk_len += 4 + len;
    return 0;
}

/* The exchange e of flow f, packed (the order unpack_transactions reads). */
static int pack_tx(Lane *L, Flow *f, Ex *e) {
    PyObject *info = f->info;
    int keyed = L->part_n > 1;
    if ((keyed && (pk_i64(L, L->cur_idx) < 0 || pk_i64(L, ++L->seq) < 0))
            || pk_str(L, PyTuple_GET_ITEM(info, 0)) < 0 || pk_str(L, PyTuple_GET_ITEM(info, 1)) < 0
            || pk_i64(L, PyLong_AsLongLong(PyTuple_GET_ITEM(info, 2))) < 0
            || pk_str(L, PyTuple_GET_ITEM(info, 3)) < 0
            || pk_i64(L, PyLong_AsLongLong(PyTuple_GET_ITEM(info, 4))) < 0
            || pk_i64(L, e->depth) < 0 || pk_i64(L, e->req_ts) < 0 || pk_i64(L, e->req_end_ts) < 0
            || pk_i64(L, e->resp_ts) < 0 || pk_i64(L, e->resp_end_ts) < 0
            || pk_str(L, e->method) < 0 || pk_str(L, e->host) < 0 || pk_str(L, e->uri) < 0
            || pk_str(L, e->version) < 0 || pk_i64(L, e->has_resp ? e->status : NEVER) < 0
            || pk_str(L, e->has_resp ? e->reason : NULL) < 0 || pk_str(L, e->has_resp ? e->resp_version : NULL) < 0
            || pk_i64(L, e->req_head) < 0 || pk_i64(L, e->req_body) < 0
            || pk_i64(L, e->has_resp ? e->resp_head : NEVER) < 0 || pk_i64(L, e->has_resp ? e->resp_body : NEVER) < 0
            || pk_str(L, e->req_ct) < 0 || pk_str(L, e->has_resp ? e->resp_ct : NULL) < 0 || pk_str(L, e->ua) < 0
            || pk_i64(L, e->notes) < 0 || pk_str(L, e->consumer) < 0)
        return -1;
    if (PyErr_Occurred()) return -1;
    return L->pk_len >= PK_FLUSH_BYTES ? flush_pending(L) : 0;
}

/* to_end: the exchange is emitted by the end of the capture (connection.close): a Transaction object
 * for the Analyzer's end batch (Lane.end_transactions), whatever the mode. */
static int emit_to(Lane *L, Flow *f, Ex *e, int to_end) {
    L->c_transactions++;
    if (L->packed && !to_end) return pack_tx(L, f, e);
    PyTypeObject *tp = (PyTypeObject *)(to_end ? L->tx_class : L->tx_type);
    PyObject *tx = tp->tp_alloc(tp, 0);
    if (!tx) return -1;
    PyObject *v[T_NFIELDS];
    PyObject *info = f->info;
    v[T_CONN] = PyTuple_GET_ITEM(info, 0); Py_INCREF(v[T_CONN]);
    v[T_DEPTH] = PyLong_FromLong(e->depth);
    v[T_CIP] = PyTuple_GET_ITEM(info, 1); Py_INCREF(v[T_CIP]);
    v[T_CPORT] = PyTuple_GET_ITEM(info, 2); Py_INCREF(v[T_CPORT]);
    v[T_SIP] = PyTuple_GET_ITEM(info, 3); Py_INCREF(v[T_SIP]);
    v[T_SPORT] = PyTuple_GET_ITEM(info, 4); Py_INCREF(v[T_SPORT]);
    v[T_REQ_TS] = PyLong_FromLongLong(e->req_ts);
    v[T_REQ_END] = ts_or_none(e->req_end_ts);
    v[T_RESP_TS] = ts_or_none(e->resp_ts);
    v[T_RESP_END] = ts_or_none(e->resp_end_ts);
    v[T_METHOD] = e->method; e->method = NULL;
    v[T_HOST] = e->host; e->host = NULL;
    v[T_URI] = e->uri; e->uri = NULL;
    v[T_VERSION] = e->version; e->version = NULL;
    v[T_STATUS] = e->has_resp ? PyLong_FromLong(e->status) : none_ref();
    v[T_REASON] = e->reason; e->reason = NULL;
    v[T_RESP_VERSION] = e->resp_version; e->resp_version = NULL;
    v[T_REQ_HEAD] = PyLong_FromLongLong(e->req_head);
    v[T_REQ_BODY] = PyLong_FromLongLong(e->req_body);
    v[T_RESP_HEAD] = e->has_resp ? PyLong_FromLongLong(e->resp_head) : none_ref();
    v[T_RESP_BODY] = e->has_resp ? PyLong_FromLongLong(e->resp_body) : none_ref();
    v[T_REQ_CT] = e->req_ct; e->req_ct = NULL;
    v[T_RESP_CT] = e->resp_ct; e->resp_ct = NULL;
    v[T_UA] = e->ua; e->ua = NULL;
    v[T_INTERIM] = PyTuple_New(0);
    v[T_TUNNEL] = PyLong_FromLong(0);
    v[T_NOTES] = notes_tuple(e->notes);
    v[T_CONSUMER] = e->consumer ? e->consumer : none_ref(); e->consumer = NULL;
    if (!e->has_resp) { /* no response seen: its fields are None (never set on the exchange) */
        v[T_REASON] = none_ref(); v[T_RESP_VERSION] = none_ref(); v[T_RESP_CT] = none_ref();
    }
    int bad = 0;
    for (int i = 0; i < T_NFIELDS; i++) {
        if (!v[i]) { bad = 1; v[i] = Py_None; Py_INCREF(Py_None); }
        *(PyObject **)((char *)tx + L->offs[i]) = v[i];
    }
    if (bad) {
        Py_DECREF(tx);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "lane: a field of a clean exchange is missing");
        return -1;
    }
    if (to_end) {
        int rc = PyList_Append(L->end_list, tx);
        Py_DECREF(tx);
        return rc;
    }
    PyObject *r = L->part_n > 1 ? PyObject_CallFunction(L->sink, "OL", tx, L->cur_idx) : PyObject_CallOneArg(L->sink, tx);
    Py_DECREF(tx);
    if (!r) return -1;
    Py_DECREF(r);
    return 0;
}

/* connection.py _flush: emit from the front while both messages are complete. */
static int flush_done(Lane *L, Flow *f) {
    while (f->ex_len) {
        Ex *e = ex_at(f, 0);
        if (!(e->req_done && e->resp_done)) return 0;
        if (L->pass == 2 && emit_to(L, f, e, 0) < 0) { L->error = 1; return -1; }
        ex_release(e);
        f->ex_head = (f->ex_head + 1) % f->ex_cap;
        f->ex_len--;
        f->pend--;
    }
    return 0;
}

/* ------------------------------------------------------------------ heads */
static const char *const METHODS[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH",
                                      "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK",
                                      "SEARCH", "REPORT", "PURGE", "QUERY", NULL};

static int known_method(const uint8_t *p, size_t n) {
    for (int i = 0; METHODS[i]; i++)
        if (strlen(METHODS[i]) == n && memcmp(METHODS[i], p, n) == 0) return 1;
    return 0;
}

typedef struct { const uint8_t *p; size_t n; } Span;

typedef struct {
    Span a, b, c;        /* request: method target version; response: version, -, reason */
    int status;
    Span host, ct, ua;
    int have_host, have_ct, have_ua, have_cl, have_te;
    Span ident, fwd, xff, real;  /* consumer options (requests) */
    int have_ident, have_fwd, have_xff, have_real;
    unsigned long long cl;
    int chunked;
} Head;

/* p..p+n equals the lowercase ``name`` (m bytes), ASCII case folded (field names, RFC 9110 section 5.1). */
static int lower_eq_n(const uint8_t *p, size_t n, const char *name, size_t m) {
    if (n != m) return 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c >= 'A' && c <= 'Z') c = (uint8_t)(c + 32);
        if (c != (uint8_t)name[i]) return 0;
    }
    return 1;
}

static int lower_eq(const uint8_t *p, size_t n, const char *name) { return lower_eq_n(p, n, name, strlen(name)); }

static inline int is_ws(uint8_t c) { return c == ' ' || c == '\t'; }

/* The fields the reference looks at (parser.WANTED_FIELDS); returns 0 when clean, -1 to taint.
 * p..p+n: the field lines (without the start line and without the final CRLF CRLF). */
static int parse_fields(Lane *L, const uint8_t *p, size_t n, int is_request, Head *h) {
    long long lines = 0;
    size_t i = 0;
    if (n == 0) return 0;
    while (i <= n) {
        const uint8_t *ln = p + i;
        const uint8_t *e = memchr(ln, '\r', n - i);
        size_t len = e ? (size_t)(e - ln) : n - i;
        lines++;
        if (lines > L->lim.max_headers) return -1;
        if (len == 0) return -1;
        uint8_t c0 = ln[0];
        if (is_ws(c0)) return -1; /* obs-fold */
        if (L->gate[c0]) {
            const uint8_t *colon = memchr(ln, ':', len);
            if (colon) {
                size_t nl = (size_t)(colon - ln);
                const uint8_t *v = colon + 1, *ve = ln + len;
                while (v < ve && is_ws(*v)) v++;
                while (ve > v && is_ws(ve[-1])) ve--;
                size_t vn = (size_t)(ve - v);
                if (lower_eq(ln, nl, "host")) {
                    if (!h->have_host) { h->have_host = 1; h->host.p = v; h->host.n = vn; }
                } else if (lower_eq(ln, nl, "content-type")) {
                    if (!h->have_ct) { h->have_ct = 1; h->ct.p = v; h->ct.n = vn; }
                } else if (lower_eq(ln, nl, "user-agent")) {
                    if (!h->have_ua) { h->have_ua = 1; h->ua.p = v; h->ua.n = vn; }
                } else if (lower_eq(ln, nl, "content-length")) {
                    if (h->have_cl || vn == 0 || vn > 17) return -1;
                    unsigned long long x = 0;
                    for (size_t k = 0; k < vn; k++) {
                        if (v[k] < '0' || v[k] > '9') return -1;
                        x = x * 10 + (v[k] - '0');
                    }
                    h->have_cl = 1; h->cl = x;
                } else if (lower_eq(ln, nl, "transfer-encoding")) {
                    if (h->have_te || !lower_eq(v, vn, "chunked")) return -1;
                    h->have_te = 1; h->chunked = 1;
                } else if (lower_eq(ln, nl, "upgrade")) {
                    if (is_request) return -1; /* the reference pauses the client side */
                } else if (lower_eq(ln, nl, "connection") || lower_eq(ln, nl, "expect")) {
                    /* read by nothing that changes a transaction */
                } else if (is_request && L->cons_header_len
                           && lower_eq_n(ln, nl, L->cons_header, (size_t)L->cons_header_len)) {
                    if (!h->have_ident) { h->have_ident = 1; h->ident.p = v; h->ident.n = vn; }
                } else if (is_request && L->cons_fwd && lower_eq(ln, nl, "forwarded")) {
                    if (h->have_fwd) return -1; /* repeated: the reference joins the lines (a list field) */
                    h->have_fwd = 1; h->fwd.p = v; h->fwd.n = vn;
                } else if (is_request && L->cons_fwd && lower_eq(ln, nl, "x-forwarded-for")) {
                    if (h->have_xff) return -1;
                    h->have_xff = 1; h->xff.p = v; h->xff.n = vn;
                } else if (is_request && L->cons_fwd && lower_eq(ln, nl, "x-real-ip")) {
                    if (!h->have_real) { h->have_real = 1; h->real.p = v; h->real.n = vn; }
                } else if (nl && is_ws(ln[nl - 1])) {
                    return -1; /* whitespace before the colon: the reference may still take it */
                }
            }
        }
        if (!e) break;
        i += len + 2; /* CRLF (the structure was checked by the caller) */
        if (i > n) break;
    }
    return 0;
}

/* A complete head at p (n bytes, ending with CRLF CRLF). 0 clean, -1 taint. */
static int parse_head(Lane *L, const uint8_t *p, size_t n, int is_request, Head *h) {
    memset(h, 0, sizeof *h);
    if ((long long)n > L->lim.max_header_bytes) return -1;
    /* Line structure: every CR is followed by LF and every LF preceded by CR. */
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c == '\r') { if (i + 1 >= n || p[i + 1] != '\n') return -1; i++; }
        else if (c == '\n') return -1;
    }
    const uint8_t *eol = memchr(p, '\r', n); /* the start line's end */
    size_t ll = (size_t)(eol - p);
    if (is_request) {
        const uint8_t *s1 = memchr(p, ' ', ll);
        if (!s1) return -1;
        const uint8_t *s2 = memchr(s1 + 1, ' ', (size_t)(eol - s1 - 1));
        if (!s2 || memchr(s2 + 1, ' ', (size_t)(eol - s2 - 1))) return -1;
        h->a.p = p; h->a.n = (size_t)(s1 - p);
        h->b.p = s1 + 1; h->b.n = (size_t)(s2 - s1 - 1);
        h->c.p = s2 + 1; h->c.n = (size_t)(eol - s2 - 1);
        if (!known_method(h->a.p, h->a.n) || h->b.n == 0) return -1;
        if (h->a.n == 7 && memcmp(h->a.p, "CONNECT", 7) == 0) return -1;
        if ((long long)h->b.n > L->lim.max_uri) return -1;
        if (h->c.n != 8 || (memcmp(h->c.p, "HTTP/1.1", 8) && memcmp(h->c.p, "HTTP/1.0", 8))) return -1;
    } else {
        if (ll < 12 || (memcmp(p, "HTTP/1.1 ", 9) && memcmp(p, "HTTP/1.0 ", 9))) return -1;
        if (p[9] < '0' || p[9] > '9' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9') return -1;
        if (ll > 12 && p[12] != ' ') return -1;
        h->a.p = p; h->a.n = 8;
        h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
        h->c.p = p + 13; h->c.n = ll > 13 ? ll - 13 : 0;
        if (ll == 13) h->c.n = 0;
    }
    /* fields: from after the start line's CRLF to before the final CRLF CRLF */
    size_t fs = ll + 2, fe = n - 4;
    if (fs < n - 2) {
        if (parse_fields(L, p + fs, fe >= fs ? fe - fs : 0, is_request, h) < 0) return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ messages */
static PyObject *latin1(Span s) { return PyUnicode_DecodeLatin1((const char *)s.p, (Py_ssize_t)s.n, NULL); }

/* The same string as the last one of this field when the bytes are the same (methods, versions, hosts,
 * user agents, content types and reasons repeat from one message to the next): one compare instead of an
 * allocation. *slot holds the last one (a new reference). */
static PyObject *latin1_again(PyObject **slot, const uint8_t *p, size_t n) {
    PyObject *last = *slot;
    if (last && (size_t)PyUnicode_GET_LENGTH(last) == n && PyUnicode_KIND(last) == PyUnicode_1BYTE_KIND
            && memcmp(PyUnicode_1BYTE_DATA(last), p, n) == 0) {
        Py_INCREF(last);
        return last;
    }
    PyObject *o = PyUnicode_DecodeLatin1((const char *)p, (Py_ssize_t)n, NULL);
    if (!o) return NULL;
    Py_INCREF(o);
    Py_XSETREF(*slot, o);
    return o;
}

static PyObject *bytes_or_none(int have, Span sp) {
    if (!have) return none_ref();
    return PyBytes_FromStringAndSize((const char *)sp.p, (Py_ssize_t)sp.n);
}

/* connection.py _emit: the consumer of a request that carries the identity field or forwarding fields,
 * decided by netrum.http.consumer (hash_identity / resolve_client) through the Python callable; a hop
 * that could not be read counts http_bad_forwarded. */
static int consumer_of(Lane *L, Flow *f, Ex *e, const Head *h) {
    PyObject *r = PyObject_CallFunction(L->consumer_of, "ONNNN", PyTuple_GET_ITEM(f->info, 1),
                                        bytes_or_none(h->have_ident, h->ident), bytes_or_none(h->have_fwd, h->fwd),
                                        bytes_or_none(h->have_xff, h->xff), bytes_or_none(h->have_real, h->real));
    if (!r) return -1;
    PyObject *who; int bad;
    if (!PyArg_ParseTuple(r, "Op", &who, &bad)) { Py_DECREF(r); return -1; }
    Py_INCREF(who);
    Py_XSETREF(e->consumer, who);
    Py_DECREF(r);
    L->c_bad_forwarded += bad;
    return 0;
}

/* One complete head of direction di (0 client, 1 server). Returns 0, or -1 to taint, -2 on a Python error. */
static int on_head(Lane *L, Flow *f, int di, const uint8_t *p, size_t n, long long ts) {
    Dir *d = &f->d[di];
    Head h;
    if (parse_head(L, p, n, di == 0, &h) < 0) return -1;
    if (di == 0) {
        if (!h.have_host || h.host.n == 0) return -1; /* the reference then reads the target's authority */
        if (f->ex_len - f->pend >= L->lim.max_pending) return -1;
        Ex *e = ex_push(f);
        if (!e) { PyErr_NoMemory(); return -2; }
        L->c_requests += (L->pass == 2);
        e->depth = ++f->depth;
        e->req_ts = d->msg_ts;
        e->req_head = (long long)n;
        e->req_ack = d->ack_first;
        e->is_head = h.a.n == 4 && memcmp(h.a.p, "HEAD", 4) == 0;
        if (L->pass == 2) {
            PyObject **c = L->again;
            e->method = latin1_again(&c[0], h.a.p, h.a.n); e->uri = latin1(h.b);
            e->version = latin1_again(&c[1], h.c.p, h.c.n);
            e->host = L->redact_host ? none_ref() : latin1_again(&c[2], h.host.p, h.host.n);
            e->ua = h.have_ua && !L->redact_ua ? latin1_again(&c[3], h.ua.p, h.ua.n) : none_ref();
            e->req_ct = h.have_ct && !L->redact_ct ? latin1_again(&c[4], h.ct.p, h.ct.n) : none_ref();
            if (!e->method || !e->uri || !e->version || !e->host || !e->ua || !e->req_ct) return -2;
            if (L->consumer_of && (h.have_ident || h.have_fwd || h.have_xff || h.have_real)
                    && consumer_of(L, f, e, &h) < 0) return -2;
        }
        if (h.chunked) { d->st = H_CSIZE; d->cdigits = 0; d->csize = 0; }
        else if (h.have_cl && h.cl) { d->st = H_LENGTH; d->remaining = h.cl; }
        else { d->st = H_HEAD; e->req_end_ts = ts; e->req_body = 0; e->req_done = 1; }
        d->body = 0;
        if (e->req_done && e->resp_done && flush_done(L, f) < 0) return -2;
        return 0;
    }
    /* a response */
    if (h.status < 200) return -1;              /* interim (1xx) and 101 */
    if (f->pend >= f->ex_len) return -1;        /* no request waiting: unmatched */
    Ex *e = ex_at(f, f->pend);
    if (e->req_ack >= 0 && d->msg_off < e->req_ack) return -1; /* connection.py: answers an unseen request */
    f->pend++;
    L->c_responses += (L->pass == 2);
    e->has_resp = 1;
    e->resp_ts = d->msg_ts;
    e->status = h.status;
    e->resp_head = (long long)n;
    if (L->pass == 2) {
        PyObject **c = L->again;
        e->resp_version = latin1_again(&c[5], h.a.p, h.a.n); e->reason = latin1_again(&c[6], h.c.p, h.c.n);
        e->resp_ct = h.have_ct && !L->redact_ct ? latin1_again(&c[7], h.ct.p, h.ct.n) : none_ref();
        if (!e->resp_version || !e->reason || !e->resp_ct) return -2;
    }
    int nobody = e->is_head || h.status == 204 || h.status == 304;
    d->body = 0;
    if (nobody) d->st = H_HEAD;
    else if (h.chunked) { d->st = H_CSIZE; d->cdigits = 0; d->csize = 0; }
    else if (h.have_cl) { if (h.cl) { d->st = H_LENGTH; d->remaining = h.cl; } else d->st = H_HEAD; }
    else return -1;                             /* read until close */
    if (d->st == H_HEAD) {
        e->resp_end_ts = ts; e->resp_body = 0; e->resp_done = 1;
        if (e->req_done && flush_done(L, f) < 0) return -2;
    }
    return 0;
}

/* The current message of direction di ended with the segment at ts. */
static int on_end(Lane *L, Flow *f, int di, long long ts) {
    Dir *d = &f->d[di];
    d->st = H_HEAD;
    if (di == 0) {
        /* the request being parsed is the newest exchange */
        Ex *e = ex_at(f, f->ex_len - 1);
        e->req_end_ts = ts; e->req_body = (long long)d->body; e->req_done = 1;
        if (e->resp_done && flush_done(L, f) < 0) return -2;
    } else {
        Ex *e = ex_at(f, f->pend - 1);
        e->resp_end_ts = ts; e->resp_body = (long long)d->body; e->resp_done = 1;
        if (e->req_done && flush_done(L, f) < 0) return -2;
    }
    return 0;
}

static int hb_append(Dir *d, const uint8_t *p, size_t n) {
    if (d->hlen + n > d->hcap) {
        size_t nc = d->hcap ? d->hcap : 256;
        while (nc < d->hlen + n) nc *= 2;
        uint8_t *nb = realloc(d->hb, nc);
        if (!nb) return -1;
        d->hb = nb; d->hcap = nc;
    }
    memcpy(d->hb + d->hlen, p, n);
    d->hlen += n;
    return 0;
}

static int partial(const Dir *d) {
    return d->hlen > 0 || (d->st == H_CSIZE && d->cdigits > 0) || d->st == H_CSIZE_LF || d->st == H_TRAIL_LF;
}

/* One in-order segment's payload for direction di. 0 clean, -1 taint, -2 Python error. */
static int feed(Lane *L, Flow *f, int di, const uint8_t *p, size_t n, long long ts) {
    Dir *d = &f->d[di];
    size_t pos = 0;
    long long off0 = d->fed;
    d->fed += (long long)n;
    d->last_ts = ts;
    while (pos < n) {
        switch (d->st) {
        case H_HEAD: {
            if (d->hlen == 0) {
                if (p[pos] == '\r' || p[pos] == '\n') return -1; /* empty lines before a start line */
                d->msg_ts = ts;
                d->msg_off = off0 + (long long)pos;
                const uint8_t *e = memmem(p + pos, n - pos, "\r\n\r\n", 4);
                if (!e) {
                    if ((long long)(n - pos) > L->lim.max_header_bytes) return -1;
                    if (hb_append(d, p + pos, n - pos) < 0) { PyErr_NoMemory(); return -2; }
                    return 0;
                }
                size_t hn = (size_t)(e - (p + pos)) + 4;
                int r = on_head(L, f, di, p + pos, hn, ts);
                if (r < 0) return r;
                pos += hn;
            } else {
                size_t old = d->hlen;
                size_t from = old >= 3 ? old - 3 : 0;
                size_t take = n - pos;
                if (hb_append(d, p + pos, take) < 0) { PyErr_NoMemory(); return -2; }
                const uint8_t *e = memmem(d->hb + from, d->hlen - from, "\r\n\r\n", 4);
                if (!e) {
                    if ((long long)d->hlen > L->lim.max_header_bytes) return -1;
                    return 0;
                }
                size_t hn = (size_t)(e - d->hb) + 4;
                d->hlen = 0;
                int r = on_head(L, f, di, d->hb, hn, ts);
                if (r < 0) return r;
                pos += hn - old;
            }
            break;
        }
        case H_LENGTH: case H_CDATA: {
            size_t avail = n - pos;
            if (avail < d->remaining) { d->remaining -= avail; d->body += avail; return 0; }
            d->body += d->remaining; pos += (size_t)d->remaining; d->remaining = 0;
            if (d->st == H_LENGTH) { int r = on_end(L, f, di, ts); if (r < 0) return r; }
            else d->st = H_CEND_CR;
            break;
        }
        case H_CSIZE: {
            uint8_t c = p[pos++];
            int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                  : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
            if (v >= 0) {
                if (++d->cdigits > 15) return -1;
                d->csize = d->csize * 16 + (unsigned)v;
            } else if (c == '\r' && d->cdigits) d->st = H_CSIZE_LF;
            else return -1; /* extensions, whitespace, bare LF: the reference's tolerant path */
            break;
        }
        case H_CSIZE_LF:
            if (p[pos++] != '\n') return -1;
            if (d->csize == 0) d->st = H_TRAIL_CR;
            else { d->st = H_CDATA; d->remaining = d->csize; }
            d->cdigits = 0; d->csize = 0;
            break;
        case H_CEND_CR:
            if (p[pos++] != '\r') return -1;
            d->st = H_CEND_LF;
            break;
        case H_CEND_LF:
            if (p[pos++] != '\n') return -1;
            d->st = H_CSIZE;
            break;
        case H_TRAIL_CR:
            if (p[pos++] != '\r') return -1; /* trailer fields */
            d->st = H_TRAIL_LF;
            break;
        case H_TRAIL_LF: {
            if (p[pos++] != '\n') return -1;
            int r = on_end(L, f, di, ts);
            if (r < 0) return r;
            break;
        }
        default:
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ frames */
typedef struct {
    const uint8_t *src, *dst; int alen;
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags;
    const uint8_t *payload; size_t plen;
    int padding;           /* decode_ip_padding counts (outer and inner IP) */
    int tunnel;            /* peeled from 1 VXLAN, 2 GENEVE, 3 GRE, 4 ERSPAN (tunnel_* counters) */
} Seg;

static int L_max_tunnel_depth = 4; /* limits.max_tunnel_depth (set by Lane_init) */

/* The PPP protocol field at data[p] (RFC 1661 section 6.5: one odd byte when compressed; the packet ends at
 * end), as decode.frames.Decoder.ppp_protocol reads it: 4 or 6 for IPv4 / IPv6 with *off set to the IP
 * header, 0 for anything else. */
static int ppp_ip(const uint8_t *data, size_t p, size_t end, size_t *off) {
    if (end < p + 1) return 0;
    unsigned proto;
    if (data[p] & 1) { proto = data[p]; p += 1; }
    else { if (end < p + 2) return 0; proto = rd16(data + p); p += 2; }
    *off = p;
    return proto == 0x0021 ? 4 : proto == 0x0057 ? 6 : 0;
}

/* An ethertype at data[at], after any 802.1Q / 802.1ad / old QinQ tags (decode.frames.Decoder.ethertype):
 * 4 or 6 for IPv4 / IPv6 with *off set to the IP header, 0 for anything else. */
static int ether_ip(const uint8_t *data, size_t n, size_t at, size_t *off, size_t *end) {
    *end = n;
    for (;;) {
        if (n < at + 2) return 0;
        uint16_t et = rd16(data + at);
        if (et == 0x0800) { *off = at + 2; return 4; }
        if (et == 0x86dd) { *off = at + 2; return 6; }
        if (et == 0x8847 || et == 0x8848) {
            /* decode.frames.Decoder.mpls: the RFC 3032 label stack down to bottom-of-stack, then IPv4 or IPv6
             * by the first nibble (a pseudowire, nibble 0, is Python's) */
            size_t p = at + 2;
            for (;;) {
                if (n < p + 4) return 0;
                int bottom = data[p + 2] & 0x01;
                p += 4;
                if (bottom) break;
            }
            if (n < p + 1) return 0;
            int nibble = data[p] >> 4;
            if (nibble != 4 && nibble != 6) return 0;
            *off = p;
            return nibble;
        }
        if (et == 0x8864) {
            /* decode.frames.Decoder.pppoe: the RFC 2516 session header, its length bounding the packet, then
             * the PPP protocol (RFC 1661 section 6.5: one odd byte when compressed) */
            size_t p = at + 2;
            if (n < p + 8) return 0;
            size_t e = p + 6 + rd16(data + p + 4);
            p += 6;
            if (e > n) e = n;
            *end = e;
            return ppp_ip(data, p, e, off);
        }
        if (et != 0x8100 && et != 0x88a8 && et != 0x9100) return 0;
        at += 4; /* TCI(2), then the inner ethertype */
    }
}

/* The TCP header at data[t0] (RFC 9293 section 3.1; at least 20 bytes before end): its segment, the
 * payload running to the end of the IP packet, or 0 for a data offset the reference rejects. */
static int tcp_at(const uint8_t *data, size_t t0, size_t end, const uint8_t *src, const uint8_t *dst, int alen,
                  Seg *s) {
    const uint8_t *tcp = data + t0;
    uint8_t doff = tcp[12];
    size_t t = t0 + (size_t)((doff >> 4) << 2);
    if (doff < 0x50 || t > end) return 0;
    s->src = src; s->dst = dst; s->alen = alen;
    s->sport = rd16(tcp); s->dport = rd16(tcp + 2);
    s->seq = rd32(tcp + 4); s->ack = rd32(tcp + 8); s->flags = tcp[13];
    s->payload = data + t; s->plen = end - t;
    return 1;
}

/* The tunnel on a UDP port pair, as decode.tunnels.UDP_PORTS picks it (the destination port first, then
 * the source port): 1 VXLAN (RFC 7348), 2 GENEVE (RFC 8926), 0 anything else (Teredo is Python's). */
static int udp_tunnel(uint16_t sport, uint16_t dport) {
    if (dport == 4789 || dport == 8472) return 1;
    if (dport == 6081) return 2;
    if (dport == 3544) return 0;
    if (sport == 4789 || sport == 8472) return 1;
    return sport == 6081 ? 2 : 0;
}

static int ip_segment(const uint8_t *data, size_t off, size_t n, int version, Seg *s, int outer);

/* GRE (RFC 2784/2890) at data[g], the outer IP packet ending at end, as decode.tunnels.gre takes it:
 * transparent Ethernet bridging, IPv4, IPv6 (tunnel_gre), ERSPAN type II and III with Ethernet inside
 * (tunnel_erspan); MPLS, source routing and enhanced GRE are Python's. */
static int gre_segment(const uint8_t *data, size_t g, size_t end, Seg *s, int padding) {
    if (end < g + 4 || L_max_tunnel_depth < 1) return 0;
    uint16_t flags = rd16(data + g), proto = rd16(data + g + 2);
    if (flags & (0x4000 | 0x0007)) return 0;
    size_t off = g + 4 + ((flags & 0x8000) ? 4 : 0) + ((flags & 0x2000) ? 4 : 0) + ((flags & 0x1000) ? 4 : 0);
    if (off > end) return 0;
    size_t ioff;
    int iv = 0, kind = 3;
    if (proto == 0x88BE) {           /* ERSPAN II: an 8-byte header when the GRE sequence number is there */
        if (flags & 0x1000) { if (end < off + 8) return 0; off += 8; }
        kind = 4;
    } else if (proto == 0x22EB) {    /* ERSPAN III: 12 bytes, 20 with the platform sub-header; Ethernet only */
        if (end < off + 12) return 0;
        int platform = data[off + 11] & 0x01, frame_type = (data[off + 10] >> 2) & 0x1F;
        off += platform ? 20 : 12;
        if (off > end || frame_type != 0) return 0;
        kind = 4;
    } else if (proto == 0x0800 || proto == 0x86dd) {
        iv = proto == 0x0800 ? 4 : 6;
        if (end <= off || (data[off] >> 4) != iv) return 0;
        ioff = off;
    } else if (proto != 0x6558) {
        return 0;
    }
    if (!iv) {                       /* an Ethernet frame (decode.frames.Decoder.link_ethernet) */
        if (end < off + 14) return 0;
        iv = ether_ip(data, end, off + 12, &ioff, &end);
        if (!iv) return 0;
    }
    if (!ip_segment(data, ioff, end, iv, s, 0)) return 0;
    s->padding += padding;
    s->tunnel = kind;
    return 1;
}

/* The IP packet at data[off] (the frame, or the tunnel's payload, ends at n): one TCP segment taken the
 * way decode.frames.Decoder takes it, counting decode_ip_padding and tunnel_vxlan like it. With
 * ``outer``, an unfragmented IPv4/UDP packet to a VXLAN port carrying Ethernet with plain IP/TCP inside is
 * taken too (decode.tunnels.vxlan at depth 0, the inner frame bounded by the UDP length). */
static int ip_segment(const uint8_t *data, size_t off, size_t n, int version, Seg *s, int outer) {
    if (version == 4 && n >= off + 20) {
        const uint8_t *ip = data + off;
        size_t total = rd16(ip + 2), ihl = (size_t)(ip[0] & 0x0F) * 4; /* options (RFC 791 3.1) are skipped */
        if ((ip[0] >> 4) != 4 || ihl < 20 || n < off + ihl || (rd16(ip + 6) & 0x3FFF)) return 0;
        if (total < ihl || off + total > n) return 0; /* cut by snaplen, TSO's 0, a bogus length: Python's */
        int padding = off + total < n;
        size_t end = off + total;
        if (ip[9] == 17 && outer) {
            if (total < ihl + 8 + 8 || L_max_tunnel_depth < 1) return 0;
            const uint8_t *udp = ip + ihl;
            size_t ulen = rd16(udp + 4);
            int kind = udp_tunnel(rd16(udp), rd16(udp + 2));
            size_t uend = end;
            if (ulen >= 8 && off + ihl + ulen < uend) uend = off + ihl + ulen;
            size_t th = off + ihl + 8; /* the tunnel header */
            if (!kind || uend < th + 8) return 0;
            size_t ioff;
            int iv;
            if (kind == 1) {
                /* decode.tunnels.vxlan: the I flag, then an Ethernet frame */
                if (!(data[th] & 0x08) || uend < th + 8 + 14) return 0;
                iv = ether_ip(data, uend, th + 8 + 12, &ioff, &uend);
            } else {
                /* decode.tunnels.geneve: version 0, options skipped, Ethernet / IPv4 / IPv6 inside */
                uint16_t proto = rd16(data + th + 2);
                size_t inner = th + 8 + (size_t)(data[th] & 0x3F) * 4;
                if ((data[th] >> 6) != 0 || inner > uend) return 0;
                if (proto == 0x6558) {
                    if (uend < inner + 14) return 0;
                    iv = ether_ip(data, uend, inner + 12, &ioff, &uend);
                } else if (proto == 0x0800 || proto == 0x86dd) {
                    iv = proto == 0x0800 ? 4 : 6;
                    ioff = inner;
                    if (uend <= inner || (data[inner] >> 4) != iv) return 0; /* the reference: decode_bad_ip */
                } else {
                    return 0;
                }
            }
            if (!iv || !ip_segment(data, ioff, uend, iv, s, 0)) return 0;
            s->padding += padding;
            s->tunnel = kind;
            return 1;
        }
        if (ip[9] == 47 && outer) return gre_segment(data, off + ihl, end, s, padding);
        if (ip[9] != 6 || total < ihl + 20 || !tcp_at(data, off + ihl, end, ip + 12, ip + 16, 4, s)) return 0;
        s->padding = padding;
        return 1;
    }
    if (version == 6 && n >= off + 40) {
        const uint8_t *ip = data + off;
        size_t plen = rd16(ip + 4);
        if ((ip[0] >> 4) != 6 || plen == 0 || off + 40 + plen > n) return 0; /* jumbogram / TSO, snaplen cut */
        size_t end = off + 40 + plen, p = off + 40;
        uint8_t nxt = ip[6];
        /* decode.frames.Decoder.ipv6: extension headers (RFC 8200 section 4; AH, RFC 4302 2.2) walked, an
         * atomic fragment header (RFC 6946) skipped; a real fragment is Python's (it reassembles) */
        for (int i = 0; nxt != 6; i++) {
            if (i == 8) return 0;
            if (end < p + 8) return 0;
            if (nxt == 0 || nxt == 43 || nxt == 60) { size_t len = ((size_t)data[p + 1] + 1) * 8; nxt = data[p]; p += len; }
            else if (nxt == 51) { size_t len = ((size_t)data[p + 1] + 2) * 4; nxt = data[p]; p += len; }
            else if (nxt == 44 && !(rd16(data + p + 2) & 0xFFF9)) { nxt = data[p]; p += 8; }
            else return 0;
            if (p > end) return 0;
        }
        if (end < p + 20 || !tcp_at(data, p, end, ip + 8, ip + 24, 16, s)) return 0;
        s->padding = end < n;
        return 1;
    }
    return 0;
}

/* The frames of netrum.decode.frames.Decoder that end in one plain TCP segment the way its fast path
 * takes them (unfragmented IPv4 without options, IPv6 with TCP as next header, nothing cut by snaplen),
 * behind the link layers whose general path does nothing else on the way (Ethernet and Linux cooked v1/v2
 * with any VLAN tags, BSD loopback, raw IP): the same segment and the same count (decode_ip_padding).
 * 1: a TCP segment; 0: not taken (Python decodes it). */
static int fast_decode(int linktype, const uint8_t *data, size_t n, Seg *s) {
    int version = 0; size_t off = 0;
    if (linktype == 1) {
        version = ether_ip(data, n, 12, &off, &n);
    } else if (linktype == 113) {
        version = ether_ip(data, n, 14, &off, &n);
    } else if (linktype == 276) {
        if (n < 20) return 0;
        uint16_t p0 = rd16(data);
        if (p0 == 0x0800 || p0 == 0x86dd) { version = p0 == 0x0800 ? 4 : 6; off = 20; } /* the protocol field, then the 20-byte header */
        else if (rd16(data) == 0x8100 || rd16(data) == 0x88a8 || rd16(data) == 0x9100) {
            /* tags follow the SLL2 header: ethertype() runs from the protocol field on data at 20 */
            size_t at = 20;
            uint16_t et = rd16(data);
            while (et == 0x8100 || et == 0x88a8 || et == 0x9100) {
                if (n < at + 4) return 0;
                et = rd16(data + at + 2);
                at += 4;
            }
            if (et == 0x0800) { version = 4; off = at; }
            else if (et == 0x86dd) { version = 6; off = at; }
        }
    } else if (linktype == 0 || linktype == 108) {
        if (n < 4) return 0;
        uint32_t le = (uint32_t)data[0] | ((uint32_t)data[1] << 8) | ((uint32_t)data[2] << 16) | ((uint32_t)data[3] << 24);
        uint32_t af = le > 0xFFFF ? rd32(data) : le; /* decode.frames.Decoder.link_null */
        if (af == 2) version = 4;
        else if (af == 24 || af == 28 || af == 30) version = 6;
        off = 4;
    } else if (linktype == 101 || linktype == 12 || linktype == 14) {
        version = n ? data[0] >> 4 : 0;
        off = 0;
    } else if (linktype == 104) {
        /* decode.frames.Decoder.link_chdlc: address(1) control(1), then an ethertype */
        version = ether_ip(data, n, 2, &off, &n);
    } else if (linktype == 9 || linktype == 50) {
        /* decode.frames.Decoder.link_ppp: RFC 1662's FF 03 when there, then the protocol */
        version = ppp_ip(data, n >= 2 && data[0] == 0xFF && data[1] == 0x03 ? 2 : 0, n, &off);
    } else if (linktype == 239) {
        /* decode.frames.Decoder.link_nflog: a 4-byte header, then TLVs (length, type: host byte order, a
         * big-endian writer told by an impossible first length), 4-byte aligned; NFULA_PAYLOAD (9) holds the
         * IP packet, bounded by its TLV */
        if (n < 4) return 0;
        size_t p = 4;
        int be = n - p >= 4 && !(rd16le(data + p) >= 4 && rd16le(data + p) <= n - p);
        for (;;) {
            if (p > n || n - p < 4) return 0;
            size_t tlen = be ? rd16(data + p) : rd16le(data + p);
            unsigned ttype = (be ? rd16(data + p + 2) : rd16le(data + p + 2)) & 0x7FFF;
            if (tlen < 4) return 0;
            if (ttype == 9) {
                if (p + tlen < n) n = p + tlen;
                off = p + 4;
                if (n < off + 1) return 0;
                version = data[off] >> 4;
                break;
            }
            p += (tlen + 3) & ~(size_t)3;
        }
    } else if (linktype == 228) {
        version = n && (data[0] >> 4) == 4 ? 4 : 0;
    } else if (linktype == 229) {
        version = n && (data[0] >> 4) == 6 ? 6 : 0;
    } else {
        return 0;
    }
    s->padding = 0;
    s->tunnel = 0;
    return ip_segment(data, off, n, version, s, 1);
}

/* Key of a segment; *dir = 0 when the sender is endpoint a. */
static void make_key(const uint8_t *src, const uint8_t *dst, int alen, uint16_t sport, uint16_t dport,
                     Key *k, int *dir) {
    memset(k, 0, sizeof *k);
    int c = memcmp(src, dst, (size_t)alen);
    int src_first = c < 0 || (c == 0 && sport <= dport);
    k->alen = (uint8_t)alen;
    if (src_first) {
        memcpy(k->a, src, (size_t)alen); memcpy(k->b, dst, (size_t)alen); k->pa = sport; k->pb = dport; *dir = 0;
    } else {
        memcpy(k->a, dst, (size_t)alen); memcpy(k->b, src, (size_t)alen); k->pa = dport; k->pb = sport; *dir = 1;
    }
}

static Tuple *tuple_get(Lane *L, const Key *k, int create) {
    uint64_t h = key_hash(k);
    Tuple *t = table_find(&L->tab, k, h);
    if (t || !create) return t;
    t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->key = *k; t->hash = h; t->closed_clock = NEVER;
    if (table_insert(&L->tab, t) < 0) { free(t); return NULL; }
    /* pipeline.FlowAssigner: a new 4-tuple goes to the least-loaded worker, ties to the lowest number */
    int o = 0;
    for (int i = 1; i < L->part_n; i++) if (L->load[i] < L->load[o]) o = i;
    t->owner = o;
    return t;
}

/* pass 2: the ConnInfo strings of a new clean connection */
static int make_info(Lane *L, Flow *f, Tuple *t) {
    const uint8_t *cip = f->client ? t->key.b : t->key.a, *sip = f->client ? t->key.a : t->key.b;
    int cport = f->client ? t->key.pb : t->key.pa, sport = f->client ? t->key.pa : t->key.pb;
    PyObject *r = PyObject_CallFunction(L->conninfo, "y#iy#iL", (const char *)cip, (Py_ssize_t)t->key.alen, cport,
                                        (const char *)sip, (Py_ssize_t)t->key.alen, sport, f->first_ts);
    if (!r) return -1;
    if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 5) {
        Py_DECREF(r);
        PyErr_SetString(PyExc_TypeError, "lane: conninfo must return a 5-tuple");
        return -1;
    }
    f->info = r;
    return 0;
}

/* The --port/--server filters (FlowTable.packet): a segment is taken when either port is a server port and
 * either address a server address (each filter only when given). */
static inline int port_in(const Lane *L, uint16_t port) { return (L->port_bits[port >> 3] >> (port & 7)) & 1; }
static int addr_in(const Lane *L, const uint8_t *a, int alen) {
    for (int i = 0; i < L->n_addrs; i++)
        if (L->addr_lens[i] == alen && memcmp(L->addrs[i], a, (size_t)alen) == 0) return 1;
    return 0;
}
static inline int passes(const Lane *L, const Seg *s) {
    if (L->port_bits && !port_in(L, s->sport) && !port_in(L, s->dport)) return 0;
    if (L->have_addrs && !addr_in(L, s->src, s->alen) && !addr_in(L, s->dst, s->alen)) return 0;
    return 1;
}

/* The state machine of one fast-path TCP segment of a tuple that is not tainted.
 * Returns 0 clean, -1 taint (with a reason), -2 Python error. */
static int segment(Lane *L, Tuple *t, int sdir, const Seg *s, long long ts, const char **why) {
    Flow *f = t->flow;
    uint8_t fl = s->flags;
    if (f && f->state == S_CLOSED) {
        /* FlowTable._closed_packet: a SYN with another ISN opens the next connection (flow_reused) */
        if (fl & F_SYN) {
            uint32_t old_isn = (sdir == f->client) ? f->isn_c : f->sbase - 1;
            if ((fl & (F_ACK | F_FIN | F_RST)) || s->plen || s->seq == old_isn) { *why = "syn after close"; return -1; }
            if (L->pass == 2) L->c_reused++;
            closed_unlink(t);
            flow_free(f); t->flow = f = NULL;
        } else {
            if (s->plen) { *why = "data after close"; return -1; }
            return 0;
        }
    }
    if (!f) {
        if (!(fl & F_SYN) || (fl & (F_ACK | F_FIN | F_RST)) || s->plen) { *why = "no handshake"; return -1; }
        /* FlowTable._resolve: a connection whose server (the SYN's destination) the filters leave out is
         * ignored whole; the reference counts its segments (flow_ignored_filter) */
        if ((L->port_bits && !port_in(L, s->dport)) || (L->have_addrs && !addr_in(L, s->dst, s->alen))) {
            *why = "filtered server"; return -1;
        }
        f = calloc(1, sizeof *f);
        if (!f) { PyErr_NoMemory(); return -2; }
        t->flow = f;
        f->state = S_SYN;
        f->client = sdir;
        f->isn_c = s->seq;
        f->first_ts = ts;
        f->first_clock = L->cclock;
        f->d[0].ack_first = f->d[1].ack_first = -1;
        return 0;
    }
    int di = (sdir == f->client) ? 0 : 1; /* 0 client, 1 server */
    if (f->state == S_SYN) {
        if (di != 1 || (fl & (F_SYN | F_ACK | F_FIN | F_RST)) != (F_SYN | F_ACK) || s->plen
                || s->ack != f->isn_c + 1 || L->last_sweep - f->first_clock >= SECOND_NS) {
            /* (a sweep 1 s after the SYN resolved the pending flow without its SYN-ACK: PENDING_SPAN_NS) */
            *why = "handshake"; return -1;
        }
        f->state = S_EST;
        f->d[0].nxt = f->isn_c + 1;
        f->d[1].nxt = s->seq + 1;
        f->sbase = s->seq + 1;
        if (L->pass == 2) {
            L->c_opened++;
            L->flows_lane++;
            if (make_info(L, f, t) < 0) return -2;
        }
        return 0;
    }
    /* established */
    if (fl & (F_SYN | F_RST)) { *why = "syn/rst"; return -1; }
    Dir *d = &f->d[di];
    if (s->plen || (fl & F_FIN)) {
        if (d->fin) { *why = "after fin"; return -1; }
        if (s->seq != d->nxt) { *why = "out of order"; return -1; }
        if (!(fl & F_ACK)) { *why = "no ack"; return -1; }
        if (di == 1 && !f->d[0].fin && seq_diff(s->ack, f->d[0].nxt) > 0) { *why = "ack rule"; return -1; }
    }
    if (s->plen) {
        if (di == 0 && !partial(d)) {
            int32_t off = seq_diff(s->ack, f->sbase);
            d->ack_first = off < 0 ? -1 : off;
        }
        d->nxt += (uint32_t)s->plen;
        int r = feed(L, f, di, s->payload, s->plen, ts);
        if (r == -1) { *why = "http"; return -1; }
        if (r < 0) return r;
    }
    if (fl & F_FIN) {
        if (d->st != H_HEAD || d->hlen) { *why = "truncated"; return -1; }
        d->fin = 1;
        d->st = H_DEAD;
        d->nxt += 1;
        if (f->d[0].fin && f->d[1].fin) {
            if (f->ex_len) { *why = "pending at close"; return -1; }
            f->state = S_CLOSED;
            t->closed_clock = L->cclock;
            closed_append(L, t);
            if (L->pass == 2) L->c_closed_fin++;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ the record walk */
static int call_progress(Lane *L, Py_ssize_t pos) {
    if (PyErr_CheckSignals() < 0) return -1;
    if (L->progress && L->progress != Py_None) {
        PyObject *r = PyObject_CallFunction(L->progress, "n", pos);
        if (!r) return -1;
        Py_DECREF(r);
    }
    return 0;
}

static int nonfast_add(Lane *L, long long idx, long long ts, long long off, long long caplen, int file,
                       int linktype) {
    if (L->nonfast_n == L->nonfast_cap) {
        long long nc = L->nonfast_cap ? L->nonfast_cap * 2 : 256;
        long long *nb = realloc(L->nonfast, (size_t)nc * NF_FIELDS * sizeof(long long));
        if (!nb) return -1;
        L->nonfast = nb; L->nonfast_cap = nc;
    }
    long long *e = L->nonfast + L->nonfast_n * NF_FIELDS;
    e[0] = idx; e[1] = ts; e[2] = off; e[3] = caplen; e[4] = file; e[5] = linktype;
    L->nonfast_n++;
    return 0;
}

/* pass 2: hand a frame to the Python analyzer (Analyzer.own_frame with the owner decided here). */
static int to_python(Lane *L, long long idx, long long ts, const uint8_t *data, size_t caplen, int owner,
                     long long clock, int linktype) {
    if (owner == L->part_k) L->frames_python++;
    if (flush_pending(L) < 0) return -1;
    PyObject *r = PyObject_CallFunction(L->py_frame, "LLy#Lii", idx, ts, (const char *)data, (Py_ssize_t)caplen,
                                        clock, owner, linktype);
    if (!r) return -1;
    long long ns, clk;
    if (!PyArg_ParseTuple(r, "LL", &ns, &clk)) { Py_DECREF(r); return -1; }
    Py_DECREF(r);
    L->next_sweep = ns;
    if (clk > L->pclock) L->pclock = clk;
    return 0;
}

/* ------------------------------------------------------------------ pcapng */
#define NG_SHB 0x0A0D0D0AU
#define NG_IDB 1U
#define NG_PB 2U   /* obsolete Packet Block */
#define NG_SPB 3U
#define NG_EPB 6U
#define NG_MAX_BLOCK (16LL * 1024 * 1024) /* capture.pcapfile.MAX_BLOCK_BYTES */

static inline uint32_t ng32(const File *F, const uint8_t *p) {
    uint32_t v; memcpy(&v, p, 4);
    return F->ng_swapped ? __builtin_bswap32(v) : v;
}
static inline uint16_t ng16(const File *F, const uint8_t *p) {
    uint16_t v; memcpy(&v, p, 2);
    return F->ng_swapped ? __builtin_bswap16(v) : v;
}

/* An Interface Description Block's body (capture.pcapfile._parse_idb): 0, or -1 where the reference's
 * arithmetic leaves 64 bits (a resolution finer than 2^-63 s or 10^-18 s, an offset beyond 290 years):
 * the lane stands aside for such a file. */
static int ng_idb(Lane *L, File *F, const uint8_t *b, const uint8_t *be, long long max_caplen_cap) {
    if (F->nif == F->cap_if) {
        int nc = F->cap_if ? F->cap_if * 2 : 4;
        NgIf *n = realloc(F->ifs, sizeof(NgIf) * (size_t)nc);
        if (!n) return -2;
        F->ifs = n; F->cap_if = nc;
    }
    NgIf *I = &F->ifs[F->nif];
    I->linktype = ng16(F, b);
    uint32_t snaplen = ng32(F, b + 4);
    I->max_caplen = snaplen == 0 ? max_caplen_cap
                  : (2LL * snaplen > 65535 ? 2LL * snaplen : 65535) < max_caplen_cap
                  ? (2LL * snaplen > 65535 ? 2LL * snaplen : 65535) : max_caplen_cap;
    I->num = 1000; I->den = 1; I->off_ns = 0;
    const uint8_t *q = b + 8;
    while (q + 4 <= be) {
        uint16_t code = ng16(F, q), len = ng16(F, q + 2);
        q += 4;
        if (code == 0 || q + len > be) break;
        if (code == 9 && len >= 1) {          /* if_tsresol */
            uint8_t v = q[0];
            if (v & 0x80) {
                if ((v & 0x7F) > 63) return -1;
                I->num = 1000000000ULL; I->den = 1ULL << (v & 0x7F);
            } else if (v <= 9) {
                I->num = 1; for (int i = 0; i < 9 - v; i++) I->num *= 10; I->den = 1;
            } else {
                if (v > 27) return -1;
                I->num = 1; I->den = 1; for (int i = 0; i < v - 9; i++) I->den *= 10;
            }
        } else if (code == 14 && len >= 8) {  /* if_tsoffset (seconds) */
            uint64_t u; memcpy(&u, q, 8);
            long long sec = (long long)(F->ng_swapped ? __builtin_bswap64(u) : u);
            if (sec > 4000000000LL || sec < -4000000000LL) return -1;
            I->off_ns = sec * SECOND_NS;
        }
        q += (len + 3) & ~3;
    }
    F->nif++;
    return 0;
}

static int file_damage(File *F, int what, long long at, long long val) {
    F->dmg = what; F->dmg_at = at; F->dmg_val = val;
    return -1;
}

/* The next packet of pcapng file F from *pos (capture.pcapfile._iter_pcapng, block by block): 1 with the
 * packet's fields, 0 at the end of the file, -1 where the reader stops with damage (F->dmg), -2 out of
 * memory, -3 beyond the lane (L->damaged = 4: it stands aside). */
static int ng_next(Lane *L, File *F, Py_ssize_t *pos, long long *ts, uint32_t *caplen, uint32_t *wirelen,
                   const uint8_t **data, int *linktype) {
    const uint8_t *base = F->view.buf;
    Py_ssize_t size = F->view.len, p = *pos;
    for (;;) {
        if (size - p < 12) {
            if (size > p) return file_damage(F, DMG_TRUNCATED, p, 0);
            *pos = p;
            return 0;
        }
        const uint8_t *blk = base + p;
        uint32_t raw; memcpy(&raw, blk, 4);
        if (raw == NG_SHB) { /* a palindrome: the section's byte order comes from its byte-order magic */
            uint32_t bom; memcpy(&bom, blk + 8, 4);
            if (bom == 0x1A2B3C4DU) F->ng_swapped = 0;
            else if (bom == 0x4D3C2B1AU) F->ng_swapped = 1;
            else return file_damage(F, DMG_BOM, p, 0);
            F->nif = 0;
        }
        uint32_t btype = ng32(F, blk), blen = ng32(F, blk + 4);
        if (blen < 12 || blen % 4 || blen > NG_MAX_BLOCK) return file_damage(F, DMG_BLOCK_LEN, p, blen);
        if (size - p < (Py_ssize_t)blen) return file_damage(F, DMG_TRUNCATED, p, 0);
        if (ng32(F, blk + blen - 4) != blen) return file_damage(F, DMG_BLOCK_LENS, p, 0);
        const uint8_t *b = blk + 8, *be = blk + blen - 4;
        p += blen;
        if (btype == NG_EPB || btype == NG_PB) {
            if (be - b < 20) return file_damage(F, DMG_PB_SHORT, p - blen, 0);
            uint32_t if_id, hi, lo;
            if (btype == NG_EPB) { if_id = ng32(F, b); hi = ng32(F, b + 4); lo = ng32(F, b + 8); }
            else { if_id = ng16(F, b); hi = ng32(F, b + 4); lo = ng32(F, b + 8); }
            *caplen = ng32(F, b + 12); *wirelen = ng32(F, b + 16);
            if (if_id >= (uint32_t)F->nif) return file_damage(F, DMG_IF_UNDECLARED, p - blen, if_id);
            const NgIf *I = &F->ifs[if_id];
            if ((long long)*caplen > I->max_caplen || (long long)*caplen > (be - b) - 20)
                return file_damage(F, DMG_CAPLEN, p - blen, *caplen);
            unsigned __int128 t = ((unsigned __int128)(((uint64_t)hi << 32) | lo) * I->num) / I->den;
            if (t > (unsigned __int128)(1ULL << 62)) { L->damaged = 4; return -3; }
            *ts = (long long)t + I->off_ns;
            *data = b + 20;
            *linktype = I->linktype;
        } else if (btype == NG_SPB) {
            if (!F->nif || be - b < 4) return file_damage(F, DMG_SPB_NO_IF, p - blen, 0);
            *wirelen = ng32(F, b);
            uint32_t room = (uint32_t)(be - b - 4);
            *caplen = *wirelen < room ? *wirelen : room;
            *ts = F->ng_last_ts > 0 ? F->ng_last_ts : 0; /* no time in an SPB: the previous packet's */
            *data = b + 4;
            *linktype = F->ifs[0].linktype;
        } else {
            if (btype == NG_IDB) {
                if (be - b < 8) return file_damage(F, DMG_IDB_SHORT, p - blen, 0);
                int r = ng_idb(L, F, b, be, F->max_caplen);
                if (r == -2) return -2;
                if (r < 0) { L->damaged = 4; return -3; }
            } else if (btype != NG_SHB && L->pass != 2) {
                L->ng_unsupported++;
            }
            continue;
        }
        F->ng_last_ts = *ts;
        *pos = p;
        return 1;
    }
}

/* pass 1: the link type of a frame joins the list of those seen (Analyzer.linktypes); 0, or -1 when a
 * capture has more kinds than the list holds (the lane stands aside). */
static int note_linktype(Lane *L, int linktype) {
    for (int i = 0; i < L->n_linktypes; i++) if (L->linktypes[i] == linktype) return 0;
    if (L->n_linktypes == 64) return -1;
    L->linktypes[L->n_linktypes++] = linktype;
    return 0;
}

/* pass 2: what the decoder and the flow table count for one of this worker's fast-path TCP segments. */
static void count_segment(Lane *L, const Seg *s) {
    L->c_tcp_packets++;
    L->c_tcp_payload += (long long)s->plen;
    L->c_padding += s->padding;
    L->c_vxlan += s->tunnel == 1;
    L->c_geneve += s->tunnel == 2;
    L->c_gre += s->tunnel == 3;
    L->c_erspan += s->tunnel == 4;
}

static int walk(Lane *L) {
    long long idx = 0, last_ts = -1;
    L->cclock = NEVER;
    L->pclock = NEVER;
    L->sweep_next = NEVER;
    L->last_sweep = NEVER;
    L->events_i = 0;
    L->done_bytes = 0;
    L->frames_read = 0;
    for (int fi = 0; fi < L->nfiles && !L->damaged; fi++) {
    File *F = &L->files[fi];
    L->cur_file = fi;
    L->base = F->view.buf; L->size = F->view.len; L->data_off = F->data_off;
    L->swapped = F->swapped; L->ns_unit = F->ns_unit; L->max_caplen = F->max_caplen;
    if (L->pass != 2) { F->min_ts = NEVER; F->max_ts = NEVER; F->packets = 0; }
    F->ng_swapped = 0; F->nif = 0; F->ng_last_ts = -1; F->dmg = DMG_NONE;
    const uint8_t *base = L->base;
    Py_ssize_t size = L->size, pos = L->data_off;
    long long released = pos - pos % 4096, next_release = released + RELEASE_BYTES;
    Py_ssize_t prefetched = pos;
    while (pos < size) {
        {
            Py_ssize_t ahead = pos + PREFETCH_AHEAD < size ? pos + PREFETCH_AHEAD : size;
            for (; prefetched < ahead; prefetched += 64) __builtin_prefetch(base + prefetched);
        }
        if (pos >= next_release) {
            long long upto = pos - pos % 4096;
            madvise((void *)(base + released), (size_t)(upto - released), MADV_DONTNEED);
            released = upto; next_release = upto + RELEASE_BYTES;
        }
        if (L->pass == PASS_RECOUNT) {
            if (idx == L->recount_upto) break;
        } else if ((idx & 8191) == 0 && idx && call_progress(L, L->done_bytes + pos) < 0) return -1;
        long long ts;
        uint32_t caplen, wirelen;
        const uint8_t *data;
        int linktype;
        if (F->ng) {
            int r = ng_next(L, F, &pos, &ts, &caplen, &wirelen, &data, &linktype);
            if (r == -2) { PyErr_NoMemory(); return -1; }
            if (r <= 0) break;
        } else {
            if (pos + 16 > size) { file_damage(F, DMG_TRUNCATED, pos, 0); break; }
            const uint8_t *rec = base + pos;
            uint32_t sec = rdh32(L, rec), frac = rdh32(L, rec + 4);
            caplen = rdh32(L, rec + 8); wirelen = rdh32(L, rec + 12);
            if ((long long)caplen > L->max_caplen) { file_damage(F, DMG_CAPLEN, pos, caplen); break; }
            Py_ssize_t end = pos + 16 + (Py_ssize_t)caplen;
            if (end > size) { file_damage(F, DMG_TRUNCATED, pos, 0); break; }
            ts = (long long)sec * SECOND_NS + (long long)frac * L->ns_unit;
            data = rec + 16;
            linktype = F->linktype;
            pos = end;
        }
        idx++;
        L->frames_read = idx;
        if (L->pass != 2) {
            if (wirelen > caplen) { L->cut++; L->cut_bytes += wirelen - caplen; }
            L->wire += wirelen;
            L->packets++;
            F->packets++;
            if (ts < last_ts) L->ooo++; /* over the whole stream, as capture.pcapfile.read_merged counts */
            last_ts = ts;
            if (L->first_ts == NEVER || ts < L->first_ts) L->first_ts = ts;
            if (L->last_ts == NEVER || ts > L->last_ts) L->last_ts = ts;
            if (F->min_ts == NEVER || ts < F->min_ts) F->min_ts = ts;
            if (F->max_ts == NEVER || ts > F->max_ts) F->max_ts = ts;
            if (note_linktype(L, linktype) < 0) { L->damaged = 4; break; }
            if (L->pass == PASS_RECOUNT) continue;
        }
        Seg s;
        if (L->events_i < L->events_n && L->events[2 * L->events_i] == idx) {
            /* A TCP segment only Python decodes (tunnel, VLAN, fragment...): it moves the packet clock, its
             * 4-tuple is counted by the assigner, and that incarnation is Python's. */
            long long ets = L->events[2 * L->events_i + 1];
            Key *ek = &L->event_keys[L->events_i];
            L->events_i++;
            long long clock_before = L->pclock;
            clock_to(L, ets);
            Tuple *t = tuple_get(L, ek, 1);
            if (!t) { PyErr_NoMemory(); return -1; }
            if (t->start_idx == 0) { t->start_idx = idx; if (L->pass == 2) t->tainted = 1; }
            L->load[t->owner]++;
            t->last_clock = L->cclock;
            lru_touch(L, t);
            if (L->pass == 1) taint(L, t, "python frame");
            else if (to_python(L, idx, ts, data, caplen, t->owner, clock_before, linktype) < 0) return -1;
            continue;
        }
        if (!fast_decode(linktype, data, caplen, &s)) {
            /* Not TCP (or not decodable): every worker's decoder sees it (fragment state); worker 0 counts it. */
            if (L->pass == 1) {
                if (L->nonfast_n >= NONFAST_MAX) { L->damaged = 3; break; } /* bounded memory: stand aside */
                if (nonfast_add(L, idx, ts, (long long)(data - base), caplen, fi, linktype) < 0) {
                    PyErr_NoMemory(); return -1;
                }
            } else if (to_python(L, idx, ts, data, caplen, 0, L->pclock, linktype) < 0) return -1;
            continue;
        }
        if ((L->port_bits || L->have_addrs) && !passes(L, &s)) {
            /* FlowTable.packet counts it and leaves it: no tuple, no packet clock (single process only) */
            if (L->pass == 2) {
                count_segment(L, &s);
                L->c_ignored++;
            }
            continue;
        }
        long long clock_before = L->pclock;
        clock_to(L, ts);
        Key k; int sdir;
        make_key(s.src, s.dst, s.alen, s.sport, s.dport, &k, &sdir);
        Tuple *t = tuple_get(L, &k, 1);
        if (!t) { PyErr_NoMemory(); return -1; }
        if (t->start_idx == 0) {
            t->start_idx = idx;
            if (L->pass == 2) t->tainted = idxset_has(&L->tainted, idx);
        }
        L->load[t->owner]++;
        t->last_clock = L->cclock;
        lru_touch(L, t);
        int mine = t->owner == L->part_k;
        if (L->pass == 2) {
            if (mine && t->tainted) {
                if (to_python(L, idx, ts, data, caplen, t->owner, clock_before, linktype) < 0) return -1;
                continue;
            }
            /* the reference's packet clock and its sweep (Analyzer.skip_segment) come first */
            if (ts > L->pclock) {
                L->pclock = ts;
                if (ts >= L->next_sweep) {
                    if (flush_pending(L) < 0) return -1;
                    PyObject *r = PyObject_CallFunction(L->py_tick, "LLL", idx, ts, clock_before);
                    if (!r) return -1;
                    L->next_sweep = PyLong_AsLongLong(r);
                    Py_DECREF(r);
                    if (PyErr_Occurred()) return -1;
                }
            }
            if (!mine) continue;
            count_segment(L, &s);
        }
        if (!mine || t->tainted) continue;
        L->cur_idx = idx;
        const char *why = NULL;
        int r = segment(L, t, sdir, &s, ts, &why);
        if (r == -2 || L->error == 1) return -1;
        if (r == -1) {
            if (L->pass == 2) {
                PyErr_Format(PyExc_RuntimeError, "lane: a connection left the clean path in the second pass (%s)", why);
                return -1;
            }
            taint(L, t, why);
        }
        if (L->error == 2) { PyErr_NoMemory(); return -1; }
    }
    L->done_bytes += size;
    }
    L->frames = idx;
    return 0;
}

/* Ctrl-C stopped pass 2 after L->frames_read frames: the capture's figures (frames, packets, bytes, span,
 * link types...) become those of the frames read, as the reader's are when the reference stops there, not
 * pass 1's of the whole capture. Walks the records again (only the records: no decoding, no analysis). */
static void recount_capture(Lane *L) {
    long long upto = L->frames_read;
    L->frames = L->packets = L->wire = L->cut = L->cut_bytes = L->ooo = 0;
    L->first_ts = L->last_ts = NEVER;
    L->ng_unsupported = 0; L->n_linktypes = 0;
    L->pass = PASS_RECOUNT;
    L->recount_upto = upto;
    (void)walk(L);
    L->pass = 2;
    L->frames = upto;
}

/* End of capture, pass 1: connections that the reference would end with something pending are tainted;
 * the clean ones still open are counted flow_open_at_end in pass 2. */
/* End of capture for one clean connection still open (FlowTable.close_all -> flush -> eof of each
 * direction, then HttpConnection.close): a message cut in the middle is ended at the last byte its parser
 * saw (http_truncated, truncated_request / truncated_response); a head cut before its end only counts;
 * then every exchange left is emitted in depth order, those without a response noted no_response. */
static int end_flow(Lane *L, Flow *f) {
    for (int di = 0; di < 2; di++) {
        Dir *d = &f->d[di];
        if (d->st == H_HEAD) continue; /* (a partial head tainted the connection in pass 1) */
        L->c_truncated++;
        Ex *e = di == 0 ? ex_at(f, f->ex_len - 1) : ex_at(f, f->pend - 1);
        if (di == 0) { e->req_end_ts = d->last_ts; e->req_body = (long long)d->body; e->req_done = 1; e->notes |= NOTE_TRUNC_REQ; }
        else { e->resp_end_ts = d->last_ts; e->resp_body = (long long)d->body; e->resp_done = 1; e->notes |= NOTE_TRUNC_RESP; }
        d->st = H_HEAD;
    }
    while (f->ex_len) {
        Ex *e = ex_at(f, 0);
        if (!e->has_resp) { e->notes |= NOTE_NO_RESPONSE; L->c_no_response++; }
        if (emit_to(L, f, e, 1) < 0) return -1;
        ex_release(e);
        f->ex_head = (f->ex_head + 1) % f->ex_cap;
        f->ex_len--;
    }
    return 0;
}

/* A connection the lane can end as the reference ends it (end_flow): established, neither side closed, no
 * head in progress (a head cut short may still be a message to the reference: an HTTP/0.9 request line, a
 * response without a head). */
static int endable(const Flow *f) {
    return f->state == S_EST && !f->d[0].fin && !f->d[1].fin && !f->d[0].hlen && !f->d[1].hlen;
}

/* The clean connections still open, at the end of the capture or where Ctrl-C stopped pass 2 (interrupted).
 * End of capture: those the lane cannot end are tainted in pass 1 (the reference ends them its own way);
 * the others are counted flow_open_at_end and ended (end_flow) in pass 2. Interrupted: the endable ones are
 * ended, the others dropped; the output is marked interrupted (partial) either way. */
static int end_open(Lane *L, int interrupted) {
    for (size_t i = 0; i < L->tab.cap; i++) {
        Tuple *t = L->tab.slots[i];
        if (!t || t->tainted || !t->flow || t->owner != L->part_k || t->flow->state == S_CLOSED) continue;
        if (!endable(t->flow)) {
            if (!interrupted) taint(L, t, "open at end");
            continue;
        }
        if (L->pass != 2) continue;
        if (!interrupted) L->c_open_at_end++;
        if (end_flow(L, t->flow) < 0) return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ Python API */
static void lane_clear_tables(Lane *L) {
    if (L->tab.slots) {
        for (size_t i = 0; i < L->tab.cap; i++) {
            Tuple *t = L->tab.slots[i];
            if (t) { flow_free(t->flow); free(t); }
        }
        free(L->tab.slots);
        L->tab.slots = NULL;
    }
}

static void release_files(Lane *L) {
    for (int i = 0; i < L->nfiles; i++) {
        if (L->files[i].have_view) { PyBuffer_Release(&L->files[i].view); L->files[i].have_view = 0; }
        free(L->files[i].ifs);
    }
    free(L->files);
    L->files = NULL; L->nfiles = 0; L->base = NULL; L->size = 0;
}

static void Lane_dealloc(Lane *L) {
    lane_clear_tables(L);
    free(L->nonfast);
    free(L->events);
    free(L->event_keys);
    free(L->tainted.v);
    free(L->pk);
    for (int i = 0; i < 8; i++) Py_CLEAR(L->again[i]);
    free(L->port_bits); free(L->addrs); free(L->addr_lens);
    release_files(L);
    Py_XDECREF(L->py_frame); Py_XDECREF(L->py_tick); Py_XDECREF(L->sink); Py_XDECREF(L->conninfo);
    Py_XDECREF(L->tx_type); Py_XDECREF(L->progress); Py_XDECREF(L->tx_class);
    Py_XDECREF(L->end_list); Py_XDECREF(L->consumer_of);
    Py_TYPE(L)->tp_free((PyObject *)L);
}

/* ports: an iterable of server ports or None; addrs: an iterable of 4- or 16-byte addresses or None. */
static int set_filters(Lane *L, PyObject *ports, PyObject *addrs) {
    if (ports && ports != Py_None) {
        PyObject *seq = PySequence_Fast(ports, "ports: an iterable of port numbers");
        if (!seq) return -1;
        L->port_bits = calloc(8192, 1);
        if (!L->port_bits) { Py_DECREF(seq); PyErr_NoMemory(); return -1; }
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
            long v = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
            if (v == -1 && PyErr_Occurred()) { Py_DECREF(seq); return -1; }
            if (v < 0 || v > 65535) continue; /* no segment carries it */
            L->port_bits[v >> 3] |= (uint8_t)(1 << (v & 7));
        }
        Py_DECREF(seq);
    }
    if (addrs && addrs != Py_None) {
        PyObject *seq = PySequence_Fast(addrs, "addrs: an iterable of addresses (bytes)");
        if (!seq) return -1;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        L->addrs = calloc((size_t)(n ? n : 1), 16);
        L->addr_lens = calloc((size_t)(n ? n : 1), sizeof(int));
        if (!L->addrs || !L->addr_lens) { Py_DECREF(seq); PyErr_NoMemory(); return -1; }
        L->have_addrs = 1;
        for (Py_ssize_t i = 0; i < n; i++) {
            char *b; Py_ssize_t len;
            if (PyBytes_AsStringAndSize(PySequence_Fast_GET_ITEM(seq, i), &b, &len) < 0) { Py_DECREF(seq); return -1; }
            if (len != 4 && len != 16) continue; /* no segment carries it */
            memcpy(L->addrs[L->n_addrs], b, (size_t)len);
            L->addr_lens[L->n_addrs++] = (int)len;
        }
        Py_DECREF(seq);
    }
    return 0;
}

/* consumer: None, or (identity field name (lowercase bytes) or None, read the forwarding fields (bool),
 * redacted field names (lowercase bytes), consumer_of callable). Also sets the field-line gate. */
static int set_consumer(Lane *L, PyObject *consumer) {
    static const char *const base[] = {"content-length", "transfer-encoding", "host", "connection", "upgrade",
                                       "content-type", "user-agent", "expect", NULL};
    memset(L->gate, 0, sizeof L->gate);
    for (int i = 0; base[i]; i++) { L->gate[(uint8_t)base[i][0]] = 1; L->gate[(uint8_t)base[i][0] - 32] = 1; }
    if (!consumer || consumer == Py_None) return 0;
    PyObject *header, *redact, *fn;
    int fwd;
    if (!PyArg_ParseTuple(consumer, "OpOO", &header, &fwd, &redact, &fn)) return -1;
    if (header != Py_None) {
        char *b; Py_ssize_t n;
        if (PyBytes_AsStringAndSize(header, &b, &n) < 0) return -1;
        if (n < 1 || n >= (Py_ssize_t)sizeof L->cons_header) {
            PyErr_SetString(PyExc_ValueError, "consumer header name: 1 to 127 bytes");
            return -1;
        }
        memcpy(L->cons_header, b, (size_t)n);
        L->cons_header_len = (int)n;
        uint8_t c = (uint8_t)b[0];
        L->gate[c] = 1;
        if (c >= 'a' && c <= 'z') L->gate[c - 32] = 1;
    }
    L->cons_fwd = fwd;
    if (fwd) { L->gate['f'] = L->gate['F'] = L->gate['x'] = L->gate['X'] = 1; }
    PyObject *seq = PySequence_Fast(redact, "redact: field names");
    if (!seq) return -1;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        char *b; Py_ssize_t n;
        if (PyBytes_AsStringAndSize(PySequence_Fast_GET_ITEM(seq, i), &b, &n) < 0) { Py_DECREF(seq); return -1; }
        if (lower_eq_n((const uint8_t *)b, (size_t)n, "host", 4)) L->redact_host = 1;
        else if (lower_eq_n((const uint8_t *)b, (size_t)n, "user-agent", 10)) L->redact_ua = 1;
        else if (lower_eq_n((const uint8_t *)b, (size_t)n, "content-type", 12)) L->redact_ct = 1;
    }
    Py_DECREF(seq);
    if (!PyCallable_Check(fn)) { PyErr_SetString(PyExc_TypeError, "consumer_of must be callable"); return -1; }
    Py_INCREF(fn);
    L->consumer_of = fn;
    return 0;
}

static int Lane_init(Lane *L, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"files", "limits", "part", "ports", "addrs", "consumer", NULL};
    PyObject *files, *limits, *part = NULL, *ports = NULL, *addrs = NULL, *consumer = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|OOOO", kwlist, &files, &limits, &part, &ports, &addrs, &consumer))
        return -1;
    L->part_k = 0; L->part_n = 1;
    if (part && part != Py_None && !PyArg_ParseTuple(part, "ii", &L->part_k, &L->part_n)) return -1;
    if (L->part_n < 1 || L->part_n > 64 || L->part_k < 0 || L->part_k >= L->part_n) {
        PyErr_SetString(PyExc_ValueError, "part: need 0 <= k < n <= 64");
        return -1;
    }
    if (L->files) { PyErr_SetString(PyExc_RuntimeError, "Lane already initialised"); return -1; }
    if (set_filters(L, ports, addrs) < 0 || set_consumer(L, consumer) < 0) return -1;
    PyObject *seq = PySequence_Fast(files,
                                    "files: (buffer, data_offset, linktype, swapped, ns_unit, max_caplen, pcapng)...");
    if (!seq) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n < 1 || n > MAX_FILES) { Py_DECREF(seq); PyErr_SetString(PyExc_ValueError, "files: 1 to 4096"); return -1; }
    L->files = calloc((size_t)n, sizeof(File));
    if (!L->files) { Py_DECREF(seq); PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < n; i++) {
        File *F = &L->files[i];
        PyObject *buf;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "OnipLLp", &buf, &F->data_off, &F->linktype,
                              &F->swapped, &F->ns_unit, &F->max_caplen, &F->ng)
                || PyObject_GetBuffer(buf, &F->view, PyBUF_SIMPLE) < 0) {
            Py_DECREF(seq);
            return -1;
        }
        F->have_view = 1;
        L->nfiles = (int)i + 1;
    }
    Py_DECREF(seq);
    long long max_depth;
    if (!PyArg_ParseTuple(limits, "LLLLLLLL", &L->lim.max_flows, &L->lim.idle_ns, &L->lim.linger_ns,
                          &L->lim.max_header_bytes, &L->lim.max_headers, &L->lim.max_pending, &L->lim.max_uri,
                          &max_depth))
        return -1;
    L_max_tunnel_depth = (int)(max_depth < 0 ? 0 : max_depth > 64 ? 64 : max_depth);
    if (table_init(&L->tab) < 0) { PyErr_NoMemory(); return -1; }
    L->lru.lru_next = L->lru.lru_prev = &L->lru;
    L->closed.cl_next = L->closed.cl_prev = &L->closed;
    L->first_ts = L->last_ts = NEVER;
    return 0;
}

/* Pass 2 starts from nothing but the tainted incarnations (and the events) pass 1 found. */
static int reset_for_run(Lane *L) {
    lane_clear_tables(L);
    if (table_init(&L->tab) < 0) return -1;
    L->lru.lru_next = L->lru.lru_prev = &L->lru;
    L->closed.cl_next = L->closed.cl_prev = &L->closed;
    L->live = 0;
    memset(L->load, 0, sizeof L->load);
    return 0;
}

/* scan(progress, events=()) -> (status, frames, max_live): pass 1. status: "ok", "truncated" or "corrupt".
 * events: (frame index, ts) of the TCP segments in frames only Python decodes, in frame order: they move
 * the packet clock. A second scan() (with the events the first one let Python find) starts afresh. */
static PyObject *Lane_scan(Lane *L, PyObject *args) {
    PyObject *progress = Py_None, *events = NULL;
    if (!PyArg_ParseTuple(args, "|OO", &progress, &events)) return NULL;
    if (L->pass > 1) { PyErr_SetString(PyExc_RuntimeError, "scan() after run()"); return NULL; }
    if (L->pass == 1) {
        lane_clear_tables(L);
        if (table_init(&L->tab) < 0) return PyErr_NoMemory();
        L->lru.lru_next = L->lru.lru_prev = &L->lru;
        L->closed.cl_next = L->closed.cl_prev = &L->closed;
        L->live = L->max_live = 0;
        L->frames = L->packets = L->wire = L->cut = L->cut_bytes = L->ooo = 0;
        L->first_ts = L->last_ts = NEVER;
        L->nonfast_n = 0; L->damaged = 0; L->tuples_tainted = 0;
        L->ng_unsupported = 0; L->n_linktypes = 0;
        memset(L->load, 0, sizeof L->load);
        free(L->tainted.v); memset(&L->tainted, 0, sizeof L->tainted);
        L->taint_reason[0] = 0;
        memset(L->reasons, 0, sizeof L->reasons); memset(L->reason_n, 0, sizeof L->reason_n);
    }
    free(L->events); L->events = NULL; L->events_n = 0;
    free(L->event_keys); L->event_keys = NULL;
    if (events && events != Py_None) {
        PyObject *seq = PySequence_Fast(events, "events must be a sequence");
        if (!seq) return NULL;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        L->events = malloc(sizeof(long long) * 2 * (size_t)(n ? n : 1));
        L->event_keys = malloc(sizeof(Key) * (size_t)(n ? n : 1));
        if (!L->events || !L->event_keys) { Py_DECREF(seq); return PyErr_NoMemory(); }
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_buffer a, b;
            int pa, pb;
            if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "LLy*iy*i", &L->events[2 * i],
                                  &L->events[2 * i + 1], &a, &pa, &b, &pb)) {
                Py_DECREF(seq); return NULL;
            }
            int dir, ok = a.len == b.len && (a.len == 4 || a.len == 16);
            if (ok) make_key(a.buf, b.buf, (int)a.len, (uint16_t)pa, (uint16_t)pb, &L->event_keys[i], &dir);
            else memset(&L->event_keys[i], 0xff, sizeof(Key)); /* an address family the lane never keys */
            PyBuffer_Release(&a); PyBuffer_Release(&b);
            if (i && L->events[2 * i] <= L->events[2 * i - 2]) {
                Py_DECREF(seq); PyErr_SetString(PyExc_ValueError, "events must be in frame order"); return NULL;
            }
        }
        L->events_n = n;
        Py_DECREF(seq);
    }
    L->pass = 1;
    Py_INCREF(progress); Py_XSETREF(L->progress, progress);
    if (walk(L) < 0 || end_open(L, 0) < 0) return NULL;
    const char *st = L->damaged == 3 ? "too many frames for the general decoder"
                   : L->damaged == 4 ? "pcapng beyond the lane (timestamp resolution or offset, link types)" : "ok";
    if (!L->damaged) {
        /* several files are one stream only when each ends before the next begins: then the time-ordered
         * merge (capture.pcapfile.read_merged, ties in file order) is the files one after the other */
        long long prev_max = NEVER;
        for (int i = 0; i < L->nfiles; i++) {
            if (L->files[i].min_ts == NEVER) continue;
            if (prev_max != NEVER && L->files[i].min_ts < prev_max) { st = "files overlap in time"; break; }
            prev_max = L->files[i].max_ts;
        }
    }
    return Py_BuildValue("sLL", st, L->frames, L->max_live);
}

/* nonfast() -> list of (index, ts, offset, caplen, file, linktype) for the frames Python must decode. */
static PyObject *Lane_nonfast(Lane *L, PyObject *Py_UNUSED(ignored)) {
    PyObject *out = PyList_New((Py_ssize_t)L->nonfast_n);
    if (!out) return NULL;
    for (long long i = 0; i < L->nonfast_n; i++) {
        long long *e = L->nonfast + i * NF_FIELDS;
        PyObject *x = Py_BuildValue("LLLLLL", e[0], e[1], e[2], e[3], e[4], e[5]);
        if (!x) { Py_DECREF(out); return NULL; }
        PyList_SET_ITEM(out, (Py_ssize_t)i, x);
    }
    return out;
}

/* The offsets of Transaction's 28 slots (member descriptors, in field order). */
static int slot_offsets(PyObject *slots, Py_ssize_t *offs) {
    if (!PySequence_Check(slots) || PySequence_Size(slots) != T_NFIELDS) {
        PyErr_SetString(PyExc_TypeError, "slot_descriptors: the 28 slots of Transaction, in field order");
        return -1;
    }
    for (Py_ssize_t i = 0; i < T_NFIELDS; i++) {
        PyObject *d = PySequence_GetItem(slots, i);
        if (!d) return -1;
        if (Py_TYPE(d) != &PyMemberDescr_Type || ((PyMemberDescrObject *)d)->d_member->type != T_OBJECT_EX) {
            Py_DECREF(d);
            PyErr_SetString(PyExc_TypeError, "slot_descriptors must be object member descriptors");
            return -1;
        }
        offs[i] = ((PyMemberDescrObject *)d)->d_member->offset;
        Py_DECREF(d);
    }
    return 0;
}

/* unpack_transactions(tx_type, slot_descriptors, data, offset, keyed) -> list: the Transaction objects
 * packed by pack_tx from data[offset:] (with keyed, (emission key, Transaction) pairs). */
typedef struct { const uint8_t *p, *end; } Rd;

static int rd_i64(Rd *r, long long *v) {
    if (r->end - r->p < 8) return -1;
    memcpy(v, r->p, 8);
    r->p += 8;
    return 0;
}

static PyObject *rd_int(Rd *r, int none_if_never) {
    long long v;
    if (rd_i64(r, &v) < 0) return NULL;
    if (none_if_never && v == NEVER) return none_ref();
    return PyLong_FromLongLong(v);
}

/* slot: where the last string of this field is kept (latin1_again), or NULL for a field that rarely repeats */
static PyObject *rd_str(Rd *r, PyObject **slot) {
    uint32_t n;
    if (r->end - r->p < 4) return NULL;
    memcpy(&n, r->p, 4);
    r->p += 4;
    if (n == PK_NONE) return none_ref();
    size_t len = n & ~PK_UTF8;
    if ((size_t)(r->end - r->p) < len) return NULL;
    const char *b = (const char *)r->p;
    r->p += len;
    if (n & PK_UTF8) return PyUnicode_DecodeUTF8(b, (Py_ssize_t)len, NULL);
    if (slot) return latin1_again(slot, (const uint8_t *)b, len);
    return PyUnicode_DecodeLatin1(b, (Py_ssize_t)len, NULL);
}

static PyObject *unpack_transactions(PyObject *Py_UNUSED(mod), PyObject *args) {
    PyObject *tx_type, *slots;
    Py_buffer buf;
    Py_ssize_t offset;
    int keyed;
    Py_ssize_t offs[T_NFIELDS];
    if (!PyArg_ParseTuple(args, "O!Oy*np", &PyType_Type, &tx_type, &slots, &buf, &offset, &keyed)) return NULL;
    PyObject *out = NULL, *empty = NULL;
    PyObject *c[12] = {0}; /* the last string of each repeating field (latin1_again) */
    if (slot_offsets(slots, offs) < 0 || offset < 0 || offset > buf.len) goto bad;
    out = PyList_New(0);
    empty = PyTuple_New(0);
    if (!out || !empty) goto bad;
    Rd r = {(const uint8_t *)buf.buf + offset, (const uint8_t *)buf.buf + buf.len};
    PyTypeObject *tp = (PyTypeObject *)tx_type;
    while (r.p < r.end) {
        long long idx = 0, seq = 0;
        if (keyed && (rd_i64(&r, &idx) < 0 || rd_i64(&r, &seq) < 0)) goto short_data;
        PyObject *v[T_NFIELDS] = {0};
        v[T_CONN] = rd_str(&r, &c[0]); v[T_CIP] = rd_str(&r, &c[1]); v[T_CPORT] = rd_int(&r, 0);
        v[T_SIP] = rd_str(&r, &c[2]); v[T_SPORT] = rd_int(&r, 0);
        v[T_DEPTH] = rd_int(&r, 0); v[T_REQ_TS] = rd_int(&r, 0); v[T_REQ_END] = rd_int(&r, 1);
        v[T_RESP_TS] = rd_int(&r, 1); v[T_RESP_END] = rd_int(&r, 1);
        v[T_METHOD] = rd_str(&r, &c[3]); v[T_HOST] = rd_str(&r, &c[4]); v[T_URI] = rd_str(&r, NULL);
        v[T_VERSION] = rd_str(&r, &c[5]);
        v[T_STATUS] = rd_int(&r, 1); v[T_REASON] = rd_str(&r, &c[6]); v[T_RESP_VERSION] = rd_str(&r, &c[7]);
        v[T_REQ_HEAD] = rd_int(&r, 0); v[T_REQ_BODY] = rd_int(&r, 0);
        v[T_RESP_HEAD] = rd_int(&r, 1); v[T_RESP_BODY] = rd_int(&r, 1);
        v[T_REQ_CT] = rd_str(&r, &c[8]); v[T_RESP_CT] = rd_str(&r, &c[9]); v[T_UA] = rd_str(&r, &c[10]);
        long long notes = 0;
        int ok = rd_i64(&r, &notes) == 0;
        v[T_NOTES] = ok ? notes_tuple((int)notes) : NULL;
        v[T_CONSUMER] = ok ? rd_str(&r, &c[11]) : NULL;
        v[T_INTERIM] = empty; Py_INCREF(empty);
        v[T_TUNNEL] = PyLong_FromLong(0);
        int missing = 0;
        for (int i = 0; i < T_NFIELDS; i++) missing |= v[i] == NULL;
        PyObject *tx = missing ? NULL : tp->tp_alloc(tp, 0);
        if (!tx) {
            for (int i = 0; i < T_NFIELDS; i++) Py_XDECREF(v[i]);
            if (!PyErr_Occurred()) goto short_data;
            goto bad;
        }
        for (int i = 0; i < T_NFIELDS; i++) *(PyObject **)((char *)tx + offs[i]) = v[i];
        PyObject *item = keyed ? Py_BuildValue("((LiisL)N)", idx, 1, 0, "", seq, tx) : tx;
        if (!item || PyList_Append(out, item) < 0) { Py_XDECREF(item); goto bad; }
        Py_DECREF(item);
    }
    for (int i = 0; i < 12; i++) Py_XDECREF(c[i]);
    Py_DECREF(empty);
    PyBuffer_Release(&buf);
    return out;
short_data:
    PyErr_SetString(PyExc_ValueError, "unpack_transactions: the data ends inside a transaction");
bad:
    for (int i = 0; i < 12; i++) Py_XDECREF(c[i]);
    Py_XDECREF(out);
    Py_XDECREF(empty);
    PyBuffer_Release(&buf);
    return NULL;
}

static PyMethodDef module_methods[] = {
    {"unpack_transactions", unpack_transactions, METH_VARARGS, "Transaction objects from packed bytes"},
    {NULL, NULL, 0, NULL},
};

/* run(frame, tick, sink, conninfo, tx_type, slot_descriptors, next_sweep, progress, mode): pass 2. mode 0:
 * one Transaction per sink call (with its frame index when partitioned); 2: packed bytes (pack_tx). */
static PyObject *Lane_run(Lane *L, PyObject *args) {
    PyObject *frame, *tick, *sink, *conninfo, *tx_type, *slots, *progress;
    long long next_sweep;
    int batch = 0;
    if (!PyArg_ParseTuple(args, "OOOOOOLO|i", &frame, &tick, &sink, &conninfo, &tx_type, &slots, &next_sweep,
                          &progress, &batch))
        return NULL;
    if (L->pass != 1 || L->damaged) { PyErr_SetString(PyExc_RuntimeError, "run() needs a clean scan() first"); return NULL; }
    if (!PyType_Check(tx_type)) { PyErr_SetString(PyExc_TypeError, "run(): tx_type must be a type"); return NULL; }
    if (slot_offsets(slots, L->offs) < 0) return NULL;
    {
        PyObject *d0 = PySequence_GetItem(slots, 0); /* checked by slot_offsets: a member descriptor */
        if (!d0) return NULL;
        PyObject *cls = (PyObject *)PyDescr_TYPE(d0);
        Py_INCREF(cls);
        Py_XSETREF(L->tx_class, cls);
        Py_DECREF(d0);
    }
    L->pass = 2;
    Py_INCREF(frame); Py_XSETREF(L->py_frame, frame);
    Py_INCREF(tick); Py_XSETREF(L->py_tick, tick);
    Py_INCREF(sink); Py_XSETREF(L->sink, sink);
    Py_INCREF(conninfo); Py_XSETREF(L->conninfo, conninfo);
    Py_INCREF(tx_type); Py_XSETREF(L->tx_type, tx_type);
    Py_INCREF(progress); Py_XSETREF(L->progress, progress);
    Py_XSETREF(L->end_list, PyList_New(0));
    if (!L->end_list) return NULL;
    L->next_sweep = next_sweep;
    if (reset_for_run(L) < 0) return PyErr_NoMemory();
    L->packed = batch == 2; /* packed: the sink gets bytes (pack_tx), else one Transaction per call */
    if (walk(L) < 0) {
        /* keep what was found (Ctrl-C, a failing sink): hand over what is packed; on Ctrl-C, end the clean
         * connections still open where the reading stopped, as Analyzer.finish ends the reference's (their
         * exchanges join the end batch: the run is marked interrupted); then report */
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        if (flush_pending(L) < 0) PyErr_Clear();
        if (et && PyErr_GivenExceptionMatches(et, PyExc_KeyboardInterrupt)) {
            if (end_open(L, 1) < 0) PyErr_Clear();
            recount_capture(L);
        }
        PyErr_Restore(et, ev, tb);
        return NULL;
    }
    if (flush_pending(L) < 0 || end_open(L, 0) < 0) return NULL;
    return PyLong_FromLongLong(L->pclock);
}

static PyObject *Lane_counters(Lane *L, PyObject *Py_UNUSED(ignored)) {
    return Py_BuildValue(
        "{sLsLsLsLsLsLsLsLsLsLsLsLsLsLsLsLsLsLsLsLsLsLsLsL}",
        "capture_packets", L->packets, "capture_bytes", L->wire, "capture_snaplen_cut", L->cut,
        "capture_snaplen_bytes", L->cut_bytes, "capture_out_of_order_ts", L->ooo,
        "capture_unsupported_block", L->ng_unsupported,
        "flow_ignored_filter", L->c_ignored,
        "http_bad_forwarded", L->c_bad_forwarded,
        "tcp_packets", L->c_tcp_packets, "tcp_payload_bytes", L->c_tcp_payload, "decode_ip_padding", L->c_padding, "tunnel_vxlan", L->c_vxlan, "tunnel_geneve", L->c_geneve, "tunnel_gre", L->c_gre, "tunnel_erspan", L->c_erspan,
        "flow_opened", L->c_opened, "flow_role_by_syn", L->c_opened, "flow_closed_fin", L->c_closed_fin,
        "flow_open_at_end", L->c_open_at_end, "http_truncated", L->c_truncated, "http_no_response", L->c_no_response, "flow_reused", L->c_reused, "http_requests", L->c_requests, "http_responses", L->c_responses);
}

static PyObject *Lane_stats(Lane *L, PyObject *Py_UNUSED(ignored)) {
    PyObject *why = PyDict_New();
    if (!why) return NULL;
    for (int i = 0; i < 32 && L->reasons[i]; i++) {
        PyObject *n = PyLong_FromLongLong(L->reason_n[i]);
        if (!n || PyDict_SetItemString(why, L->reasons[i], n) < 0) { Py_XDECREF(n); Py_DECREF(why); return NULL; }
        Py_DECREF(n);
    }
    PyObject *r = Py_BuildValue("{sLsLsLsLsLsLsLss}", "frames", L->frames, "flows_lane", L->flows_lane,
                         "flows_python", L->tuples_tainted, "frames_python", L->frames_python,
                         "frames_nonfast", L->nonfast_n, "transactions_lane", L->c_transactions,
                         "max_live_tuples", L->max_live, "first_taint", L->taint_reason);
    if (r && PyDict_SetItemString(r, "python_because", why) < 0) Py_CLEAR(r);
    Py_DECREF(why);
    return r;
}

static PyObject *Lane_span(Lane *L, PyObject *Py_UNUSED(ignored)) {
    if (L->first_ts == NEVER) return Py_BuildValue("(OO)", Py_None, Py_None);
    return Py_BuildValue("(LL)", L->first_ts, L->last_ts);
}

static PyObject *Lane_file_spans(Lane *L, PyObject *Py_UNUSED(ignored)) {
    PyObject *out = PyList_New(L->nfiles);
    if (!out) return NULL;
    for (int i = 0; i < L->nfiles; i++) {
        PyObject *x = L->files[i].min_ts == NEVER ? (Py_INCREF(Py_None), Py_None)
                    : Py_BuildValue("(LL)", L->files[i].min_ts, L->files[i].max_ts);
        if (!x) { Py_DECREF(out); return NULL; }
        PyList_SET_ITEM(out, i, x);
    }
    return out;
}

/* end_transactions() -> the Transactions the end of the capture closed (for Analyzer.finish's batch). */
static PyObject *Lane_end_transactions(Lane *L, PyObject *Py_UNUSED(ignored)) {
    if (!L->end_list) return PyList_New(0);
    Py_INCREF(L->end_list);
    return L->end_list;
}

static PyObject *Lane_linktypes(Lane *L, PyObject *Py_UNUSED(ignored)) {
    PyObject *out = PyList_New(L->n_linktypes);
    if (!out) return NULL;
    for (int i = 0; i < L->n_linktypes; i++) {
        PyObject *x = PyLong_FromLong(L->linktypes[i]);
        if (!x) { Py_DECREF(out); return NULL; }
        PyList_SET_ITEM(out, i, x);
    }
    return out;
}

/* damage() -> [(file index, DMG_* code, offset, packets read before it, value)] for the files whose
 * reading stopped at damage (pass 1). */
static PyObject *Lane_damage(Lane *L, PyObject *Py_UNUSED(ignored)) {
    PyObject *out = PyList_New(0);
    if (!out) return NULL;
    for (int i = 0; i < L->nfiles; i++) {
        File *F = &L->files[i];
        if (!F->dmg) continue;
        PyObject *x = Py_BuildValue("(iiLLL)", i, F->dmg, F->dmg_at, F->packets, F->dmg_val);
        if (!x || PyList_Append(out, x) < 0) { Py_XDECREF(x); Py_DECREF(out); return NULL; }
        Py_DECREF(x);
    }
    return out;
}

static PyObject *Lane_release(Lane *L, PyObject *Py_UNUSED(ignored)) {
    release_files(L);
    Py_RETURN_NONE;
}

static PyMethodDef Lane_methods[] = {
    {"scan", (PyCFunction)Lane_scan, METH_VARARGS, "pass 1: find the 4-tuples that leave the clean path"},
    {"nonfast", (PyCFunction)Lane_nonfast, METH_NOARGS, "frames the fast decoder did not take"},
    {"run", (PyCFunction)Lane_run, METH_VARARGS, "pass 2: analyse clean connections, hand the rest to Python"},
    {"counters", (PyCFunction)Lane_counters, METH_NOARGS, "the lane's counts (netrum.counters names)"},
    {"stats", (PyCFunction)Lane_stats, METH_NOARGS, "how the work was split"},
    {"span", (PyCFunction)Lane_span, METH_NOARGS, "(first_ts, last_ts) of the capture"},
    {"linktypes", (PyCFunction)Lane_linktypes, METH_NOARGS, "the link types of the frames (pass 1)"},
    {"end_transactions", (PyCFunction)Lane_end_transactions, METH_NOARGS, "what the end of the capture closed"},
    {"file_spans", (PyCFunction)Lane_file_spans, METH_NOARGS, "(first, last) timestamp of each file, or None"},
    {"damage", (PyCFunction)Lane_damage, METH_NOARGS, "where the reading of damaged files stopped (pass 1)"},
    {"release", (PyCFunction)Lane_release, METH_NOARGS, "let go of the capture buffers"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject LaneType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "netrum._lane.Lane",
    .tp_basicsize = sizeof(Lane),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The compiled lane over mmap'ed pcap and pcapng files (see netrum/lane.py).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Lane_init,
    .tp_dealloc = (destructor)Lane_dealloc,
    .tp_methods = Lane_methods,
};

static struct PyModuleDef lanemod = {PyModuleDef_HEAD_INIT, "_lane", "netrum's compiled lane (issue 6)", -1,
                                     module_methods};

PyMODINIT_FUNC PyInit__lane(void) {
    if (PyType_Ready(&LaneType) < 0) return NULL;
    PyObject *m = PyModule_Create(&lanemod);
    if (!m) return NULL;
    Py_INCREF(&LaneType);
    if (PyModule_AddObject(m, "Lane", (PyObject *)&LaneType) < 0) { Py_DECREF(&LaneType); Py_DECREF(m); return NULL; }
    return m;
}
