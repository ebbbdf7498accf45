/* The Pump: reads every RTP socket of one media engine and relays the plain case in C.
 *
 * The engine registers each endpoint's RTP socket (add) and the pump's epoll descriptor with its
 * event loop (loop.add_reader(pump.fileno(), pump.run)). run() takes the ready sockets from
 * epoll, drains each with recvmmsg until fewer than a batch is waiting, and for every datagram
 * does exactly what RtpEndpoint.datagram_received and Member.on_audio would do when the packet
 *
 *   - comes from the endpoint's accepted peer, the endpoint is enabled, the RTP framing is valid
 *     and the payload type is the endpoint's audio payload type, and
 *   - the endpoint's sink is a member whose fast-path listeners all send through a pump socket:
 *
 * count it, update the reception statistics, mark the member active, send it with each
 * listener's own header (sendmmsg from the listener's socket to the listener's peer), and when
 * the member is mixed or recorded (it has a jitter buffer) push the payload into its buffer.
 * Packets that are clearly foreign (latching impossible), early (not enabled) or malformed are
 * counted and dropped in C with the same rules as Python. Everything else (a possible latch,
 * telephone-event and other payload types) goes to the endpoint's
 * datagram_received(data, addr) in Python; queued sends are flushed first, so the order on
 * the wire stays that of arrival.
 */
#include "fastpath.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <structmember.h>
#include <sys/epoll.h>
#include <unistd.h>

#define BATCH 32
#define SLOT 65536 /* the largest UDP datagram: nothing is ever truncated */
#define OUT_MAX 64
#define EVENTS 256

typedef struct {
    PyObject_HEAD
    int epfd;
    PyObject **endpoints; /* indexed by fd; strong references */
    int capacity;
    Py_ssize_t count;
    int running;
    unsigned char *buffers;
    struct mmsghdr in[BATCH];
    struct iovec in_iov[BATCH];
    struct sockaddr_storage from[BATCH];
    struct mmsghdr out[OUT_MAX];
    struct iovec out_iov[OUT_MAX][2];
    unsigned char out_header[OUT_MAX][12];
    StreamCore *out_stream[OUT_MAX]; /* strong references until flushed */
    int out_count;
    long long relayed;
    long long to_python;
    long long dropped;
    long long batches;
    long long send_errors;
} Pump;

static PyObject *str_datagram_received;

/* --- sending ---------------------------------------------------------------------------------- */

static void pump_flush(Pump *p) {
    int i = 0;
    while (i < p->out_count) {
        int fd = p->out_stream[i]->fd;
        int end = i + 1;
        while (end < p->out_count && p->out_stream[end]->fd == fd) end++;
        while (i < end) {
            int sent = sendmmsg(fd, &p->out[i], (unsigned int)(end - i), 0);
            if (sent < 0 && errno == EINTR) continue;
            if (sent <= 0) { /* full socket buffer or an ICMP error: RTP drops, never queues */
                p->send_errors++;
                i++;
            } else {
                i += sent;
            }
        }
    }
    for (i = 0; i < p->out_count; i++) Py_DECREF(p->out_stream[i]);
    p->out_count = 0;
}

static void pump_queue(Pump *p, StreamCore *s, const unsigned char *payload, size_t size,
                       int marker, long long seq, long long timestamp, double now,
                       PyObject *source) {
    if (p->out_count == OUT_MAX) pump_flush(p);
    int i = p->out_count++;
    cw_stream_forward(s, source, size, marker, seq, timestamp, now, p->out_header[i]);
    Py_INCREF(s);
    p->out_stream[i] = s;
    p->out_iov[i][0].iov_base = p->out_header[i];
    p->out_iov[i][0].iov_len = 12;
    p->out_iov[i][1].iov_base = (void *)payload;
    p->out_iov[i][1].iov_len = size;
    memset(&p->out[i], 0, sizeof p->out[i]);
    p->out[i].msg_hdr.msg_name = &s->dest;
    p->out[i].msg_hdr.msg_namelen = s->dest_len;
    p->out[i].msg_hdr.msg_iov = p->out_iov[i];
    p->out[i].msg_hdr.msg_iovlen = 2;
}

/* --- one datagram ------------------------------------------------------------------------------ */

static int same_address(const EndpointCore *e, const struct sockaddr_storage *from) {
    if (e->peer_len == 0 || from->ss_family != e->peer.ss_family) return 0;
    if (from->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)from;
        const struct sockaddr_in *b = (const struct sockaddr_in *)&e->peer;
        return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
    }
    if (from->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)from;
        const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)&e->peer;
        return a->sin6_port == b->sin6_port && a->sin6_flowinfo == b->sin6_flowinfo &&
               a->sin6_scope_id == b->sin6_scope_id &&
               memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr) == 0;
    }
    return 0;
}

/* Can every listener of this member be served from C? (Python would use its transport.) */
static int listeners_ready(PyObject *listeners) {
    if (listeners == NULL || !PyList_CheckExact(listeners)) return 0;
    Py_ssize_t n = PyList_GET_SIZE(listeners);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(listeners, i);
        if (!PyObject_TypeCheck(item, &StreamCoreType)) return 0;
        StreamCore *s = (StreamCore *)item;
        if (!s->sending || s->address == NULL || s->address == Py_None) continue; /* not sent */
        if (s->fd < 0 || s->dest_len == 0) return 0;
    }
    return 1;
}

/* buffer.push(sequence_number, payload): the JitterBuffer of a member that is mixed or recorded. */
static int buffer_push(PyObject *buffer, long long seq, const unsigned char *payload, size_t size) {
    static PyObject *push_name = NULL;
    if (push_name == NULL) {
        push_name = PyUnicode_InternFromString("push");
        if (push_name == NULL) return -1;
    }
    PyObject *number = PyLong_FromLongLong(seq);
    if (number == NULL) return -1;
    PyObject *bytes = PyBytes_FromStringAndSize((const char *)payload, (Py_ssize_t)size);
    if (bytes == NULL) {
        Py_DECREF(number);
        return -1;
    }
    PyObject *result = PyObject_CallMethodObjArgs(buffer, push_name, number, bytes, NULL);
    Py_DECREF(number);
    Py_DECREF(bytes);
    if (result == NULL) return -1;
    Py_DECREF(result);
    return 0;
}

/* 0: done in C (relayed or dropped); 1: hand to Python; -1: a Python error (the clock, a push). */
static int pump_handle(Pump *p, EndpointCore *e, const unsigned char *data, size_t size,
                       const struct sockaddr_storage *from, double *now, int *have_now) {
    if (!same_address(e, from)) {
        if (e->fixed || !e->enabled || !e->latch) { /* as RtpEndpoint._latch_to */
            e->dropped_foreign++;
            p->dropped++;
            return 0;
        }
        return 1; /* a latch candidate: Python decides (latch_host, logging) */
    }
    if (!e->enabled) {
        e->dropped_early++;
        p->dropped++;
        return 0;
    }
    size_t start, end;
    if (cw_payload_bounds(data, size, &start, &end) < 0) {
        e->dropped_malformed++;
        p->dropped++;
        return 0;
    }
    if ((long long)(data[1] & 0x7F) != e->payload_type) return 1;
    PyObject *sink = e->sink, *reception = e->reception;
    if (sink == NULL || !PyObject_TypeCheck(sink, &MemberCoreType)) return 1;
    if (reception == NULL || !PyObject_TypeCheck(reception, &ReceptionCoreType)) return 1;
    MemberCore *member = (MemberCore *)sink;
    if (!listeners_ready(member->fast_listeners)) return 1;
    if (e->now == NULL || e->now == Py_None) return 1;
    if (!*have_now) {
        PyObject *value = PyObject_CallNoArgs(e->now);
        if (value == NULL) return -1;
        *now = PyFloat_AsDouble(value);
        Py_DECREF(value);
        if (*now == -1.0 && PyErr_Occurred()) return -1;
        *have_now = 1;
        /* The clock is Python code: re-check what it could have changed. */
        if (e->sink != sink || !listeners_ready(member->fast_listeners)) return 1;
    }
    long long seq = ((long long)data[2] << 8) | data[3];
    long long timestamp = ((long long)data[4] << 24) | ((long long)data[5] << 16) |
                          ((long long)data[6] << 8) | data[7];
    long long ssrc = ((long long)data[8] << 24) | ((long long)data[9] << 16) |
                     ((long long)data[10] << 8) | data[11];
    int marker = data[1] & 0x80;
    e->fixed = 1;
    e->packets_in++;
    e->bytes_in += (long long)size;
    e->last_receive = *now;
    e->has_last_receive = 1;
    cw_reception_update((ReceptionCore *)reception, ssrc, seq, timestamp, *now);
    member->last_active = *now;
    /* Held while sending: replacing a stream's old source may run a destructor. */
    PyObject *listeners = member->fast_listeners;
    Py_INCREF(sink);
    Py_INCREF(listeners);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(listeners); i++) {
        PyObject *item = PyList_GET_ITEM(listeners, i);
        if (!PyObject_TypeCheck(item, &StreamCoreType)) continue;
        StreamCore *s = (StreamCore *)item;
        if (!s->sending || s->address == NULL || s->address == Py_None) continue;
        if (s->fd < 0 || s->dest_len == 0) continue;
        pump_queue(p, s, data + start, end - start, marker, seq, timestamp, *now, sink);
    }
    /* A mixed listener or a recording hears this member too: its jitter buffer gets the
     * payload, as Member.on_audio does after forwarding. */
    int failed = 0;
    PyObject *buffer = member->buffer;
    if (buffer != NULL && buffer != Py_None) {
        Py_INCREF(buffer);
        if (Py_TYPE(buffer) == &JitterCoreType)
            failed = cw_jitter_push_bytes(buffer, seq, data + start, end - start);
        else
            failed = buffer_push(buffer, seq, data + start, end - start);
        Py_DECREF(buffer);
    }
    Py_DECREF(listeners);
    Py_DECREF(sink);
    p->relayed++;
    return failed ? -1 : 0;
}

static int pump_to_python(Pump *p, PyObject *endpoint, const unsigned char *data, size_t size,
                          const struct sockaddr_storage *from) {
    pump_flush(p);
    p->to_python++;
    PyObject *bytes = PyBytes_FromStringAndSize((const char *)data, (Py_ssize_t)size);
    if (bytes == NULL) return -1;
    PyObject *address = cw_address_tuple(from);
    if (address == NULL) {
        Py_DECREF(bytes);
        return -1;
    }
    PyObject *result =
        PyObject_CallMethodObjArgs(endpoint, str_datagram_received, bytes, address, NULL);
    Py_DECREF(bytes);
    Py_DECREF(address);
    if (result == NULL) return -1;
    Py_DECREF(result);
    return 0;
}

/* Drain one socket; -1 on a Python error. */
static int pump_drain(Pump *p, int fd, PyObject *endpoint) {
    EndpointCore *e = (EndpointCore *)endpoint;
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            p->in_iov[i].iov_base = p->buffers + (size_t)i * SLOT;
            p->in_iov[i].iov_len = SLOT;
            memset(&p->in[i].msg_hdr, 0, sizeof p->in[i].msg_hdr);
            p->in[i].msg_hdr.msg_name = &p->from[i];
            p->in[i].msg_hdr.msg_namelen = sizeof p->from[i];
            p->in[i].msg_hdr.msg_iov = &p->in_iov[i];
            p->in[i].msg_hdr.msg_iovlen = 1;
        }
        int got = recvmmsg(fd, p->in, BATCH, MSG_DONTWAIT, NULL);
        if (got < 0) {
            if (errno == EINTR) continue;
            return 0; /* EAGAIN: drained; any other error is reported once and cleared */
        }
        p->batches++;
        double now = 0.0;
        int have_now = 0;
        for (int i = 0; i < got; i++) {
            const unsigned char *data = p->in_iov[i].iov_base;
            size_t size = p->in[i].msg_len;
            int verdict = pump_handle(p, e, data, size, &p->from[i], &now, &have_now);
            if (verdict == 1) verdict = pump_to_python(p, endpoint, data, size, &p->from[i]);
            if (verdict < 0) {
                pump_flush(p);
                return -1;
            }
            if (fd >= p->capacity || p->endpoints[fd] != endpoint) { /* closed meanwhile */
                pump_flush(p);
                return 0;
            }
        }
        pump_flush(p);
        if (got < BATCH) return 0;
    }
}

/* --- the type ---------------------------------------------------------------------------------- */

static PyObject *Pump_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    if (PyTuple_GET_SIZE(args) || (kwds && PyDict_GET_SIZE(kwds))) {
        PyErr_SetString(PyExc_TypeError, "Pump() takes no arguments");
        return NULL;
    }
    Pump *p = (Pump *)type->tp_alloc(type, 0);
    if (p == NULL) return NULL;
    p->epfd = -1;
    p->buffers = malloc((size_t)BATCH * SLOT);
    if (p->buffers == NULL) {
        Py_DECREF(p);
        return PyErr_NoMemory();
    }
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        Py_DECREF(p);
        return NULL;
    }
    return (PyObject *)p;
}

static int Pump_traverse(Pump *p, visitproc visit, void *arg) {
    for (int fd = 0; fd < p->capacity; fd++) Py_VISIT(p->endpoints[fd]);
    return 0;
}

static int Pump_clear(Pump *p) {
    for (int fd = 0; fd < p->capacity; fd++) Py_CLEAR(p->endpoints[fd]);
    p->count = 0;
    return 0;
}

static void Pump_dealloc(Pump *p) {
    PyObject_GC_UnTrack(p);
    Pump_clear(p);
    for (int i = 0; i < p->out_count; i++) Py_DECREF(p->out_stream[i]);
    if (p->epfd >= 0) close(p->epfd);
    free(p->endpoints);
    free(p->buffers);
    Py_TYPE(p)->tp_free((PyObject *)p);
}

static int check_open(Pump *p) {
    if (p->epfd < 0) {
        PyErr_SetString(PyExc_ValueError, "the pump is closed");
        return -1;
    }
    return 0;
}

static PyObject *Pump_add(Pump *p, PyObject *args) {
    int fd;
    PyObject *endpoint;
    if (!PyArg_ParseTuple(args, "iO!:add", &fd, &EndpointCoreType, &endpoint)) return NULL;
    if (check_open(p) < 0) return NULL;
    if (fd < 0) return PyErr_Format(PyExc_ValueError, "invalid file descriptor %d", fd);
    if (fd >= p->capacity) {
        int capacity = p->capacity ? p->capacity : 256;
        while (capacity <= fd) capacity *= 2;
        PyObject **grown = realloc(p->endpoints, (size_t)capacity * sizeof *grown);
        if (grown == NULL) return PyErr_NoMemory();
        memset(grown + p->capacity, 0, (size_t)(capacity - p->capacity) * sizeof *grown);
        p->endpoints = grown;
        p->capacity = capacity;
    }
    if (p->endpoints[fd] != NULL)
        return PyErr_Format(PyExc_ValueError, "file descriptor %d is already pumped", fd);
    struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &event) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_INCREF(endpoint);
    p->endpoints[fd] = endpoint;
    p->count++;
    Py_RETURN_NONE;
}

static PyObject *Pump_remove(Pump *p, PyObject *args) {
    int fd;
    if (!PyArg_ParseTuple(args, "i:remove", &fd)) return NULL;
    if (fd < 0 || fd >= p->capacity || p->endpoints[fd] == NULL)
        return PyErr_Format(PyExc_ValueError, "file descriptor %d is not pumped", fd);
    if (p->epfd >= 0) epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL);
    Py_CLEAR(p->endpoints[fd]);
    p->count--;
    Py_RETURN_NONE;
}

static PyObject *Pump_run(Pump *p, PyObject *unused) {
    if (p->epfd < 0 || p->running) Py_RETURN_NONE;
    struct epoll_event events[EVENTS];
    int ready = epoll_wait(p->epfd, events, EVENTS, 0);
    if (ready < 0) {
        if (errno == EINTR) Py_RETURN_NONE;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    p->running = 1;
    int failed = 0;
    for (int i = 0; i < ready && !failed; i++) {
        int fd = events[i].data.fd;
        if (fd >= p->capacity || p->endpoints[fd] == NULL) continue; /* removed meanwhile */
        PyObject *endpoint = p->endpoints[fd];
        Py_INCREF(endpoint);
        failed = pump_drain(p, fd, endpoint) < 0;
        Py_DECREF(endpoint);
    }
    p->running = 0;
    if (failed) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Pump_fileno(Pump *p, PyObject *unused) {
    if (check_open(p) < 0) return NULL;
    return PyLong_FromLong(p->epfd);
}

static PyObject *Pump_close(Pump *p, PyObject *unused) {
    Pump_clear(p);
    if (p->epfd >= 0) {
        close(p->epfd);
        p->epfd = -1;
    }
    Py_RETURN_NONE;
}

static PyMethodDef Pump_methods[] = {
    {"add", (PyCFunction)Pump_add, METH_VARARGS,
     "add(fd, endpoint): read the endpoint's RTP socket from now on."},
    {"remove", (PyCFunction)Pump_remove, METH_VARARGS,
     "remove(fd): stop reading the socket (before closing it)."},
    {"run", (PyCFunction)Pump_run, METH_NOARGS,
     "Drain every ready socket: relay the plain case, hand the rest to Python."},
    {"fileno", (PyCFunction)Pump_fileno, METH_NOARGS, "The epoll descriptor to watch."},
    {"close", (PyCFunction)Pump_close, METH_NOARGS, "Forget every socket; close epoll."},
    {NULL},
};

static PyMemberDef Pump_members[] = {
    {"relayed", T_LONGLONG, offsetof(Pump, relayed), READONLY,
     "Packets accepted and forwarded in C."},
    {"to_python", T_LONGLONG, offsetof(Pump, to_python), READONLY,
     "Packets handed to datagram_received."},
    {"dropped", T_LONGLONG, offsetof(Pump, dropped), READONLY,
     "Packets counted foreign, early or malformed in C."},
    {"batches", T_LONGLONG, offsetof(Pump, batches), READONLY, "recvmmsg calls that returned data."},
    {"send_errors", T_LONGLONG, offsetof(Pump, send_errors), READONLY,
     "Packets the kernel refused to send (dropped)."},
    {"sockets", T_PYSSIZET, offsetof(Pump, count), READONLY, "Sockets pumped."},
    {NULL},
};

PyTypeObject PumpType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "callwarden.media._fastpath.Pump",
    .tp_doc = "Reads the RTP sockets of one engine; relays the plain two-party case in C.",
    .tp_basicsize = sizeof(Pump),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = Pump_new,
    .tp_dealloc = (destructor)Pump_dealloc,
    .tp_traverse = (traverseproc)Pump_traverse,
    .tp_clear = (inquiry)Pump_clear,
    .tp_methods = Pump_methods,
    .tp_members = Pump_members,
};

/* --- the module -------------------------------------------------------------------------------- */

static struct PyModuleDef fastpath_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "callwarden.media._fastpath",
    .m_doc = "The media engine's per-packet path in C (see callwarden.media.fastpath).",
    .m_size = -1,
    .m_methods = cw_tap_functions,
};

PyMODINIT_FUNC PyInit__fastpath(void) {
    PyTypeObject *types[] = {&StreamCoreType, &ReceptionCoreType, &EndpointCoreType,
                             &MemberCoreType, &PumpType, &JitterCoreType, &TapType};
    const char *names[] = {"StreamCore", "ReceptionCore", "EndpointCore", "MemberCore", "Pump",
                           "JitterBuffer", "Tap"};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (PyType_Ready(types[i]) < 0) return NULL;
    str_datagram_received = PyUnicode_InternFromString("datagram_received");
    if (str_datagram_received == NULL) return NULL;
    PyObject *module = PyModule_Create(&fastpath_module);
    if (module == NULL) return NULL;
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        Py_INCREF(types[i]);
        if (PyModule_AddObject(module, names[i], (PyObject *)types[i]) < 0) {
            Py_DECREF(types[i]);
            Py_DECREF(module);
            return NULL;
        }
    }
    if (PyModule_AddIntConstant(module, "BATCH", BATCH) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
