/* JitterBuffer in C: the same algorithm, results and attributes as jitter.py's PyJitterBuffer
 * (reorder by sequence number, start playout at `depth` packets, count late, lost and overflowed
 * packets, re-cut payloads of other sizes into frames), so the pump can push a mixed or recorded
 * member's payload without a Python call and the mixer's per-tick pop is a C call.
 *
 * The waiting packets are a small array of (sequence number, bytes) slots: at most
 * max_depth + 1 of them are ever held (push drops back to `depth` beyond max_depth). */
#include "fastpath.h"

#include <structmember.h>

typedef struct {
    unsigned int seq;
    PyObject *payload; /* bytes */
} Slot;

typedef struct {
    PyObject_HEAD
    long long depth;
    long long max_depth;
    long long frame_bytes;
    long long late;
    long long lost;
    long long overflowed;
    Slot *slots;
    Py_ssize_t count;
    Py_ssize_t capacity;
    int playing;
    unsigned int next;
    unsigned int newest;
    PyObject *pending; /* bytes: the rest of a payload longer than a frame */
} JitterCore;

static Py_ssize_t find(JitterCore *j, unsigned int seq) {
    for (Py_ssize_t i = 0; i < j->count; i++)
        if (j->slots[i].seq == seq) return i;
    return -1;
}

/* Remove slot i, returning its payload (a new reference for the caller). */
static PyObject *take_slot(JitterCore *j, Py_ssize_t i) {
    PyObject *payload = j->slots[i].payload;
    j->slots[i] = j->slots[j->count - 1];
    j->count--;
    return payload;
}

static unsigned int oldest(JitterCore *j) {
    unsigned int newest = j->newest, widest = 0;
    for (Py_ssize_t i = 0; i < j->count; i++) {
        unsigned int distance = (newest - j->slots[i].seq) & 0xFFFF;
        if (distance > widest) widest = distance;
    }
    return (newest - widest) & 0xFFFF;
}

static void drop_to_depth(JitterCore *j) {
    while (j->count > j->depth) {
        Py_ssize_t i = find(j, oldest(j));
        if (i < 0) break; /* cannot happen: the oldest is one of the slots */
        Py_DECREF(take_slot(j, i));
        j->overflowed++;
    }
    if (j->playing) j->next = oldest(j);
}

/* Add a packet (a new reference to `payload` is taken). */
int cw_jitter_push(PyObject *self, long long sequence_number, PyObject *payload) {
    JitterCore *j = (JitterCore *)self;
    unsigned int seq = (unsigned int)(sequence_number & 0xFFFF);
    if (j->playing && ((seq - j->next) & 0xFFFF) >= 0x8000) {
        j->late++;
        return 0;
    }
    if (j->count == 0 || ((seq - j->newest) & 0xFFFF) < 0x8000) j->newest = seq;
    Py_ssize_t i = find(j, seq);
    Py_INCREF(payload);
    if (i >= 0) {
        Py_SETREF(j->slots[i].payload, payload);
    } else {
        if (j->count == j->capacity) { /* never: count <= max_depth < capacity */
            Py_DECREF(payload);
            PyErr_SetString(PyExc_RuntimeError, "jitter buffer slots exhausted");
            return -1;
        }
        j->slots[j->count].seq = seq;
        j->slots[j->count].payload = payload;
        j->count++;
    }
    if (j->count > j->max_depth) drop_to_depth(j);
    return 0;
}

int cw_jitter_push_bytes(PyObject *self, long long sequence_number, const unsigned char *data,
                         size_t size) {
    PyObject *payload = PyBytes_FromStringAndSize((const char *)data, (Py_ssize_t)size);
    if (payload == NULL) return -1;
    int result = cw_jitter_push(self, sequence_number, payload);
    Py_DECREF(payload);
    return result;
}

/* The next packet in playout order (new reference), or NULL without an error for none. */
static PyObject *take(JitterCore *j) {
    if (!j->playing) {
        if (j->count < j->depth) return NULL;
        j->playing = 1;
        j->next = oldest(j);
    }
    Py_ssize_t i = find(j, j->next);
    PyObject *payload = i >= 0 ? take_slot(j, i) : NULL;
    j->next = (j->next + 1) & 0xFFFF;
    if (payload == NULL) {
        if (j->count > 0) {
            j->lost++;
        } else {
            j->playing = 0;
            Py_CLEAR(j->pending);
        }
    }
    return payload;
}

static PyObject *Jitter_pop(JitterCore *j, PyObject *unused) {
    Py_ssize_t frame = (Py_ssize_t)j->frame_bytes;
    if (j->pending == NULL) {
        PyObject *payload = take(j);
        if (payload == NULL) Py_RETURN_NONE;
        if (PyBytes_GET_SIZE(payload) == frame) return payload;
        j->pending = payload;
    }
    while (PyBytes_GET_SIZE(j->pending) < frame) {
        PyObject *payload = take(j);
        if (payload == NULL) Py_RETURN_NONE;
        PyBytes_Concat(&j->pending, payload);
        Py_DECREF(payload);
        if (j->pending == NULL) return NULL;
    }
    const char *data = PyBytes_AS_STRING(j->pending);
    Py_ssize_t size = PyBytes_GET_SIZE(j->pending);
    PyObject *out = PyBytes_FromStringAndSize(data, frame);
    if (out == NULL) return NULL;
    if (size == frame) {
        Py_CLEAR(j->pending);
    } else {
        PyObject *rest = PyBytes_FromStringAndSize(data + frame, size - frame);
        if (rest == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        Py_SETREF(j->pending, rest);
    }
    return out;
}

PyObject *cw_jitter_pop(PyObject *self) { return Jitter_pop((JitterCore *)self, NULL); }

static PyObject *Jitter_push(JitterCore *j, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "push(sequence_number, payload)");
        return NULL;
    }
    long long seq = PyLong_AsLongLong(args[0]);
    if (seq == -1 && PyErr_Occurred()) return NULL;
    if (!PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "the payload must be bytes");
        return NULL;
    }
    if (cw_jitter_push((PyObject *)j, seq, args[1]) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Jitter_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"depth", "max_depth", "frame_bytes", NULL};
    long long depth = 2, max_depth = 6, frame_bytes = 160;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|LLL", keywords, &depth, &max_depth,
                                     &frame_bytes))
        return NULL;
    if (depth < 1 || depth > max_depth) {
        PyErr_Format(PyExc_ValueError, "jitter buffer depth %lld must be 1..max_depth (%lld)",
                     depth, max_depth);
        return NULL;
    }
    if (max_depth > 4096 || frame_bytes < 1) {
        PyErr_SetString(PyExc_ValueError, "max_depth must be <= 4096 and frame_bytes >= 1");
        return NULL;
    }
    JitterCore *j = (JitterCore *)type->tp_alloc(type, 0);
    if (j == NULL) return NULL;
    j->capacity = (Py_ssize_t)max_depth + 1;
    j->slots = PyMem_Calloc((size_t)j->capacity, sizeof(Slot));
    if (j->slots == NULL) {
        Py_DECREF(j);
        return PyErr_NoMemory();
    }
    j->depth = depth;
    j->max_depth = max_depth;
    j->frame_bytes = frame_bytes;
    return (PyObject *)j;
}

static void Jitter_dealloc(JitterCore *j) {
    if (j->slots != NULL) {
        for (Py_ssize_t i = 0; i < j->count; i++) Py_DECREF(j->slots[i].payload);
        PyMem_Free(j->slots);
    }
    Py_CLEAR(j->pending);
    Py_TYPE(j)->tp_free((PyObject *)j);
}

static Py_ssize_t Jitter_len(JitterCore *j) { return j->count; }

static PySequenceMethods Jitter_sequence = {.sq_length = (lenfunc)Jitter_len};

static PyMethodDef Jitter_methods[] = {
    {"push", (PyCFunction)(void (*)(void))Jitter_push, METH_FASTCALL,
     "Add a packet; one that arrives after its turn was played is counted late and dropped."},
    {"pop", (PyCFunction)Jitter_pop, METH_NOARGS,
     "The next frame, or None when this tick has nothing from the source (silence)."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Jitter_members[] = {
    {"depth", T_LONGLONG, offsetof(JitterCore, depth), READONLY, NULL},
    {"max_depth", T_LONGLONG, offsetof(JitterCore, max_depth), READONLY, NULL},
    {"frame_bytes", T_LONGLONG, offsetof(JitterCore, frame_bytes), READONLY, NULL},
    {"late", T_LONGLONG, offsetof(JitterCore, late), 0, NULL},
    {"lost", T_LONGLONG, offsetof(JitterCore, lost), 0, NULL},
    {"overflowed", T_LONGLONG, offsetof(JitterCore, overflowed), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

PyTypeObject JitterCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "callwarden.media._fastpath.JitterBuffer",
    .tp_doc = "Reorder and pace one source's G.711 payloads into frames (see jitter.py).",
    .tp_basicsize = sizeof(JitterCore),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Jitter_new,
    .tp_dealloc = (destructor)Jitter_dealloc,
    .tp_methods = Jitter_methods,
    .tp_members = Jitter_members,
    .tp_as_sequence = &Jitter_sequence,
};
