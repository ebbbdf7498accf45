/* The core types: C storage for the fields Python and the pump share, and the two per-packet
 * algorithms the pump runs on them (stream numbering, reception statistics), written to give
 * bit-identical results to stream.py and reception.py. */
#include "fastpath.h"

#include <arpa/inet.h>
#include <math.h>
#include <stddef.h>
#include <string.h>
#include <structmember.h>

/* --- addresses -------------------------------------------------------------------------------- */

socklen_t cw_parse_address(PyObject *address, struct sockaddr_storage *out) {
    memset(out, 0, sizeof *out);
    if (!PyTuple_Check(address)) return 0;
    Py_ssize_t size = PyTuple_GET_SIZE(address);
    if (size < 2) return 0;
    PyObject *host = PyTuple_GET_ITEM(address, 0), *port = PyTuple_GET_ITEM(address, 1);
    if (!PyUnicode_Check(host) || !PyLong_Check(port)) return 0;
    const char *text = PyUnicode_AsUTF8(host);
    long number = PyLong_AsLong(port);
    if (text == NULL || number < 0 || number > 65535) {
        PyErr_Clear();
        return 0;
    }
    if (strchr(text, ':') == NULL) {
        struct sockaddr_in *in4 = (struct sockaddr_in *)out;
        if (size != 2 || inet_pton(AF_INET, text, &in4->sin_addr) != 1) return 0;
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)number);
        return sizeof *in4;
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET6, text, &in6->sin6_addr) != 1) return 0;
    unsigned long flowinfo = 0, scope_id = 0;
    if (size == 4) {
        flowinfo = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(address, 2));
        scope_id = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(address, 3));
        if (PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
    } else if (size != 2) {
        return 0;
    }
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)number);
    in6->sin6_flowinfo = htonl((uint32_t)flowinfo);
    in6->sin6_scope_id = (uint32_t)scope_id;
    return sizeof *in6;
}

PyObject *cw_address_tuple(const struct sockaddr_storage *address) {
    char text[INET6_ADDRSTRLEN];
    if (address->ss_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)address;
        inet_ntop(AF_INET, &in4->sin_addr, text, sizeof text);
        return Py_BuildValue("(si)", text, (int)ntohs(in4->sin_port));
    }
    if (address->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)address;
        inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
        return Py_BuildValue("(siIk)", text, (int)ntohs(in6->sin6_port),
                             (unsigned int)ntohl(in6->sin6_flowinfo),
                             (unsigned long)in6->sin6_scope_id);
    }
    return Py_BuildValue("(si)", "", 0);
}

/* --- RTP framing (RFC 3550 5.1), as rtp.payload_bounds -------------------------------------- */

int cw_payload_bounds(const unsigned char *data, size_t size, size_t *start, size_t *end) {
    if (size < 12) return -1;
    unsigned first = data[0];
    if ((first >> 6) != 2) return -1;
    size_t begin = 12 + 4 * (size_t)(first & 0x0F);
    if (begin > size) return -1;
    if (first & 0x10) {
        if (begin + 4 > size) return -1;
        size_t words = ((size_t)data[begin + 2] << 8) | data[begin + 3];
        begin += 4 + 4 * words;
        if (begin > size) return -1;
    }
    size_t stop = size;
    if (first & 0x20) {
        size_t padding = data[size - 1];
        if (padding == 0 || padding > size) return -1;
        stop = size - padding;
        if (stop < begin) return -1;
    }
    *start = begin;
    *end = stop;
    return 0;
}

/* --- reception statistics (RFC 3550 A.1, A.8), as ReceptionStatistics.update ---------------- */

static void reception_init_seq(ReceptionCore *r, long long seq) {
    r->base_seq = seq;
    r->max_seq = seq;
    r->bad_seq = CW_SEQ_MOD + 1;
    r->cycles = 0;
    r->received = 0;
    r->received_prior = 0;
    r->expected_prior = 0;
}

void cw_reception_update(ReceptionCore *r, long long ssrc, long long seq, long long timestamp,
                         double arrival) {
    if (!r->has_ssrc || ssrc != r->ssrc) {
        r->ssrc = ssrc;
        r->has_ssrc = 1;
        reception_init_seq(r, seq);
        r->last_arrival = arrival;
        r->last_timestamp = timestamp;
        r->jitter = 0.0;
    } else {
        long long delta = (seq - r->max_seq) & 0xFFFF;
        if (delta < CW_MAX_DROPOUT) {
            if (seq < r->max_seq) r->cycles += CW_SEQ_MOD;
            r->max_seq = seq;
        } else if (delta <= CW_SEQ_MOD - CW_MAX_MISORDER) {
            if (seq != r->bad_seq) {
                r->bad_seq = (seq + 1) & 0xFFFF;
                return;
            }
            reception_init_seq(r, seq);
        }
    }
    r->received += 1;
    long long sent = ((timestamp - r->last_timestamp + 0x80000000LL) & 0xFFFFFFFFLL) - 0x80000000LL;
    double difference = (arrival - r->last_arrival) * (double)r->clock_rate - (double)sent;
    r->last_arrival = arrival;
    r->last_timestamp = timestamp;
    if (difference < 0) difference = -difference;
    r->jitter += (difference - r->jitter) * 0.0625;
}

/* --- the outgoing stream's numbering, as OutgoingStream.forward ------------------------------ */

static long long stream_advance(StreamCore *s, double now) {
    if (!s->has_last_send || now - s->last_send <= CW_GAP_SECONDS) return s->frame_samples;
    /* Python's round(): to nearest, ties to even, which is nearbyint's default mode. */
    double frames = nearbyint((now - s->last_send) / CW_FRAME_SECONDS);
    return (long long)frames * s->frame_samples;
}

void cw_stream_forward(StreamCore *s, PyObject *source, size_t payload_size, int marker,
                       long long sequence_number, long long timestamp, double now,
                       unsigned char header[12]) {
    long long out_seq = (sequence_number + s->seq_offset) & 0xFFFF;
    long long delta = (out_seq - s->sequence_number) & 0xFFFF;
    if (source != s->source || (CW_MAX_DROPOUT < delta && delta < CW_SEQ_MOD - CW_MAX_MISORDER)) {
        PyObject *old = s->source;
        Py_INCREF(source);
        s->source = source;
        Py_XDECREF(old);
        s->seq_offset = (s->sequence_number + 1 - sequence_number) & 0xFFFF;
        s->ts_offset = (s->timestamp + stream_advance(s, now) - timestamp) & 0xFFFFFFFFLL;
        out_seq = (s->sequence_number + 1) & 0xFFFF;
        delta = 1;
    }
    long long out_ts = (timestamp + s->ts_offset) & 0xFFFFFFFFLL;
    if (delta < 0x8000) {
        s->sequence_number = out_seq;
        s->timestamp = out_ts;
    }
    s->last_send = now;
    s->has_last_send = 1;
    s->packets += 1;
    s->octets += (long long)payload_size;
    uint32_t ssrc = (uint32_t)s->ssrc;
    header[0] = 0x80;
    header[1] = (unsigned char)(marker | (int)(s->payload_type & 0x7F));
    header[2] = (unsigned char)(out_seq >> 8);
    header[3] = (unsigned char)out_seq;
    header[4] = (unsigned char)(out_ts >> 24);
    header[5] = (unsigned char)(out_ts >> 16);
    header[6] = (unsigned char)(out_ts >> 8);
    header[7] = (unsigned char)out_ts;
    header[8] = (unsigned char)(ssrc >> 24);
    header[9] = (unsigned char)(ssrc >> 16);
    header[10] = (unsigned char)(ssrc >> 8);
    header[11] = (unsigned char)ssrc;
}

/* --- helpers for optional floats and object fields ----------------------------------------- */

static PyObject *optional_float(int present, double value) {
    if (!present) Py_RETURN_NONE;
    return PyFloat_FromDouble(value);
}

static int set_optional_float(PyObject *value, int *present, double *target, const char *name) {
    if (value == NULL) {
        PyErr_Format(PyExc_AttributeError, "cannot delete %s", name);
        return -1;
    }
    if (value == Py_None) {
        *present = 0;
        *target = 0.0;
        return 0;
    }
    double number = PyFloat_AsDouble(value);
    if (number == -1.0 && PyErr_Occurred()) return -1;
    *present = 1;
    *target = number;
    return 0;
}

static PyObject *new_with_none(PyTypeObject *type, size_t count, const size_t *offsets) {
    PyObject *self = type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    for (size_t i = 0; i < count; i++) {
        Py_INCREF(Py_None);
        *(PyObject **)((char *)self + offsets[i]) = Py_None;
    }
    return self;
}

/* --- StreamCore --------------------------------------------------------------------------- */

static PyObject *Stream_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static const size_t fields[] = {offsetof(StreamCore, source), offsetof(StreamCore, address)};
    StreamCore *self = (StreamCore *)new_with_none(type, 2, fields);
    if (self == NULL) return NULL;
    self->clock_rate = 8000;
    self->frame_samples = 160;
    self->sending = 1;
    self->fd = -1;
    return (PyObject *)self;
}

static int Stream_traverse(StreamCore *self, visitproc visit, void *arg) {
    Py_VISIT(self->source);
    Py_VISIT(self->address);
    return 0;
}

static int Stream_clear(StreamCore *self) {
    Py_CLEAR(self->source);
    Py_CLEAR(self->address);
    return 0;
}

static void Stream_dealloc(StreamCore *self) {
    PyObject_GC_UnTrack(self);
    Stream_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Stream_get_last_send(StreamCore *self, void *closure) {
    return optional_float(self->has_last_send, self->last_send);
}

static int Stream_set_last_send(StreamCore *self, PyObject *value, void *closure) {
    return set_optional_float(value, &self->has_last_send, &self->last_send, "last_send");
}

static PyObject *Stream_get_address(StreamCore *self, void *closure) {
    PyObject *address = self->address ? self->address : Py_None;
    Py_INCREF(address);
    return address;
}

static int Stream_set_address(StreamCore *self, PyObject *value, void *closure) {
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete address");
        return -1;
    }
    self->dest_len = value == Py_None ? 0 : cw_parse_address(value, &self->dest);
    Py_INCREF(value);
    Py_XSETREF(self->address, value);
    return 0;
}

static PyMemberDef Stream_members[] = {
    {"ssrc", T_LONGLONG, offsetof(StreamCore, ssrc), 0, NULL},
    {"sequence_number", T_LONGLONG, offsetof(StreamCore, sequence_number), 0, NULL},
    {"timestamp", T_LONGLONG, offsetof(StreamCore, timestamp), 0, NULL},
    {"payload_type", T_LONGLONG, offsetof(StreamCore, payload_type), 0, NULL},
    {"clock_rate", T_LONGLONG, offsetof(StreamCore, clock_rate), 0, NULL},
    {"frame_samples", T_LONGLONG, offsetof(StreamCore, frame_samples), 0, NULL},
    {"packets", T_LONGLONG, offsetof(StreamCore, packets), 0, NULL},
    {"octets", T_LONGLONG, offsetof(StreamCore, octets), 0, NULL},
    {"_seq_offset", T_LONGLONG, offsetof(StreamCore, seq_offset), 0, NULL},
    {"_ts_offset", T_LONGLONG, offsetof(StreamCore, ts_offset), 0, NULL},
    {"sending", T_BOOL, offsetof(StreamCore, sending), 0, NULL},
    {"fd", T_INT, offsetof(StreamCore, fd), 0, NULL},
    {"_source", T_OBJECT_EX, offsetof(StreamCore, source), 0, NULL},
    {NULL},
};

static PyGetSetDef Stream_getset[] = {
    {"last_send", (getter)Stream_get_last_send, (setter)Stream_set_last_send, NULL, NULL},
    {"address", (getter)Stream_get_address, (setter)Stream_set_address, NULL, NULL},
    {NULL},
};

PyTypeObject StreamCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "callwarden.media._fastpath.StreamCore",
    .tp_doc = "The fields of an outgoing RTP stream (RFC 3550 5.1) shared with the pump.",
    .tp_basicsize = sizeof(StreamCore),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = Stream_new,
    .tp_dealloc = (destructor)Stream_dealloc,
    .tp_traverse = (traverseproc)Stream_traverse,
    .tp_clear = (inquiry)Stream_clear,
    .tp_members = Stream_members,
    .tp_getset = Stream_getset,
};

/* --- ReceptionCore ------------------------------------------------------------------------ */

static PyObject *Reception_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    ReceptionCore *self = (ReceptionCore *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->clock_rate = 8000;
    self->bad_seq = CW_SEQ_MOD + 1;
    return (PyObject *)self;
}

static void Reception_dealloc(ReceptionCore *self) { Py_TYPE(self)->tp_free((PyObject *)self); }

static PyObject *Reception_get_ssrc(ReceptionCore *self, void *closure) {
    if (!self->has_ssrc) Py_RETURN_NONE;
    return PyLong_FromLongLong(self->ssrc);
}

static int Reception_set_ssrc(ReceptionCore *self, PyObject *value, void *closure) {
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete ssrc");
        return -1;
    }
    if (value == Py_None) {
        self->has_ssrc = 0;
        self->ssrc = 0;
        return 0;
    }
    long long ssrc = PyLong_AsLongLong(value);
    if (ssrc == -1 && PyErr_Occurred()) return -1;
    self->ssrc = ssrc;
    self->has_ssrc = 1;
    return 0;
}

static PyMemberDef Reception_members[] = {
    {"clock_rate", T_LONGLONG, offsetof(ReceptionCore, clock_rate), 0, NULL},
    {"base_seq", T_LONGLONG, offsetof(ReceptionCore, base_seq), 0, NULL},
    {"max_seq", T_LONGLONG, offsetof(ReceptionCore, max_seq), 0, NULL},
    {"cycles", T_LONGLONG, offsetof(ReceptionCore, cycles), 0, NULL},
    {"received", T_LONGLONG, offsetof(ReceptionCore, received), 0, NULL},
    {"_bad_seq", T_LONGLONG, offsetof(ReceptionCore, bad_seq), 0, NULL},
    {"_received_prior", T_LONGLONG, offsetof(ReceptionCore, received_prior), 0, NULL},
    {"_expected_prior", T_LONGLONG, offsetof(ReceptionCore, expected_prior), 0, NULL},
    {"_last_timestamp", T_LONGLONG, offsetof(ReceptionCore, last_timestamp), 0, NULL},
    {"_last_sr", T_LONGLONG, offsetof(ReceptionCore, last_sr), 0, NULL},
    {"_last_arrival", T_DOUBLE, offsetof(ReceptionCore, last_arrival), 0, NULL},
    {"_jitter", T_DOUBLE, offsetof(ReceptionCore, jitter), 0, NULL},
    {"_last_sr_arrival", T_DOUBLE, offsetof(ReceptionCore, last_sr_arrival), 0, NULL},
    {NULL},
};

static PyGetSetDef Reception_getset[] = {
    {"ssrc", (getter)Reception_get_ssrc, (setter)Reception_set_ssrc, NULL, NULL},
    {NULL},
};

PyTypeObject ReceptionCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "callwarden.media._fastpath.ReceptionCore",
    .tp_doc = "The fields of one source's reception statistics (RFC 3550 A.1, A.3, A.8).",
    .tp_basicsize = sizeof(ReceptionCore),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_new = Reception_new,
    .tp_dealloc = (destructor)Reception_dealloc,
    .tp_members = Reception_members,
    .tp_getset = Reception_getset,
};

/* --- EndpointCore ------------------------------------------------------------------------- */

static PyObject *Endpoint_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static const size_t fields[] = {offsetof(EndpointCore, peer_key),
                                    offsetof(EndpointCore, reception),
                                    offsetof(EndpointCore, sink), offsetof(EndpointCore, now)};
    EndpointCore *self = (EndpointCore *)new_with_none(type, 4, fields);
    if (self == NULL) return NULL;
    self->payload_type = -1;
    return (PyObject *)self;
}

static int Endpoint_traverse(EndpointCore *self, visitproc visit, void *arg) {
    Py_VISIT(self->peer_key);
    Py_VISIT(self->reception);
    Py_VISIT(self->sink);
    Py_VISIT(self->now);
    return 0;
}

static int Endpoint_clear(EndpointCore *self) {
    Py_CLEAR(self->peer_key);
    Py_CLEAR(self->reception);
    Py_CLEAR(self->sink);
    Py_CLEAR(self->now);
    return 0;
}

static void Endpoint_dealloc(EndpointCore *self) {
    PyObject_GC_UnTrack(self);
    Endpoint_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Endpoint_get_peer_key(EndpointCore *self, void *closure) {
    PyObject *key = self->peer_key ? self->peer_key : Py_None;
    Py_INCREF(key);
    return key;
}

static int Endpoint_set_peer_key(EndpointCore *self, PyObject *value, void *closure) {
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete _peer_key");
        return -1;
    }
    self->peer_len = value == Py_None ? 0 : cw_parse_address(value, &self->peer);
    Py_INCREF(value);
    Py_XSETREF(self->peer_key, value);
    return 0;
}

static PyObject *Endpoint_get_last_receive(EndpointCore *self, void *closure) {
    return optional_float(self->has_last_receive, self->last_receive);
}

static int Endpoint_set_last_receive(EndpointCore *self, PyObject *value, void *closure) {
    return set_optional_float(value, &self->has_last_receive, &self->last_receive,
                              "last_receive");
}

static PyMemberDef Endpoint_members[] = {
    {"enabled", T_BOOL, offsetof(EndpointCore, enabled), 0, NULL},
    {"_fixed", T_BOOL, offsetof(EndpointCore, fixed), 0, NULL},
    {"_latch", T_BOOL, offsetof(EndpointCore, latch), 0, NULL},
    {"_payload_type", T_LONGLONG, offsetof(EndpointCore, payload_type), 0, NULL},
    {"packets_in", T_LONGLONG, offsetof(EndpointCore, packets_in), 0, NULL},
    {"bytes_in", T_LONGLONG, offsetof(EndpointCore, bytes_in), 0, NULL},
    {"dropped_foreign", T_LONGLONG, offsetof(EndpointCore, dropped_foreign), 0, NULL},
    {"dropped_early", T_LONGLONG, offsetof(EndpointCore, dropped_early), 0, NULL},
    {"dropped_malformed", T_LONGLONG, offsetof(EndpointCore, dropped_malformed), 0, NULL},
    {"reception", T_OBJECT_EX, offsetof(EndpointCore, reception), 0, NULL},
    {"sink", T_OBJECT_EX, offsetof(EndpointCore, sink), 0, NULL},
    {"_now", T_OBJECT_EX, offsetof(EndpointCore, now), 0, NULL},
    {NULL},
};

static PyGetSetDef Endpoint_getset[] = {
    {"_peer_key", (getter)Endpoint_get_peer_key, (setter)Endpoint_set_peer_key, NULL, NULL},
    {"last_receive", (getter)Endpoint_get_last_receive, (setter)Endpoint_set_last_receive, NULL,
     NULL},
    {NULL},
};

PyTypeObject EndpointCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "callwarden.media._fastpath.EndpointCore",
    .tp_doc = "The fields of an RTP endpoint the pump reads and counts in.",
    .tp_basicsize = sizeof(EndpointCore),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = Endpoint_new,
    .tp_dealloc = (destructor)Endpoint_dealloc,
    .tp_traverse = (traverseproc)Endpoint_traverse,
    .tp_clear = (inquiry)Endpoint_clear,
    .tp_members = Endpoint_members,
    .tp_getset = Endpoint_getset,
};

/* --- MemberCore --------------------------------------------------------------------------- */

static PyObject *Member_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static const size_t fields[] = {offsetof(MemberCore, buffer)};
    MemberCore *self = (MemberCore *)new_with_none(type, 1, fields);
    if (self == NULL) return NULL;
    self->last_active = -INFINITY;
    self->fast_listeners = PyList_New(0);
    if (self->fast_listeners == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int Member_traverse(MemberCore *self, visitproc visit, void *arg) {
    Py_VISIT(self->fast_listeners);
    Py_VISIT(self->buffer);
    return 0;
}

static int Member_clear(MemberCore *self) {
    Py_CLEAR(self->fast_listeners);
    Py_CLEAR(self->buffer);
    return 0;
}

static void Member_dealloc(MemberCore *self) {
    PyObject_GC_UnTrack(self);
    Member_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef Member_members[] = {
    {"last_active", T_DOUBLE, offsetof(MemberCore, last_active), 0, NULL},
    {"fast_listeners", T_OBJECT_EX, offsetof(MemberCore, fast_listeners), 0, NULL},
    {"buffer", T_OBJECT_EX, offsetof(MemberCore, buffer), 0, NULL},
    {NULL},
};

PyTypeObject MemberCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "callwarden.media._fastpath.MemberCore",
    .tp_doc = "The fields of a bridge member the pump needs to forward its audio.",
    .tp_basicsize = sizeof(MemberCore),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = Member_new,
    .tp_dealloc = (destructor)Member_dealloc,
    .tp_traverse = (traverseproc)Member_traverse,
    .tp_clear = (inquiry)Member_clear,
    .tp_members = Member_members,
};
