/* Tap: one recorded participant's track gathered in C, a tick at a time.
 *
 * Every participant of a recorded bridge has a tap when the track sink takes taps and every RTP
 * leg of the bridge is paced by the extension's JitterBuffer, whatever the bridge's topology
 * (two parties, hold music, a supervisor listening, whispering or barging). There are two kinds:
 *
 * - A buffer tap (an RTP leg): the mixer calls tap_frames(taps) once per tick for all of them,
 *   before it mixes. For each tap it pops the tick's frame from the participant's jitter buffer
 *   (so pacing, reordering and loss are exactly the mixer's) and keeps it as the tap's `frame`:
 *   when a mixed listener hears the participant, the mixer mixes that frame instead of popping
 *   the buffer itself, so a frame is popped once, whoever needs it. While the tap is recording
 *   it appends the frame's G.711 µ-law codes to the tap's own buffer: a PCMU payload as received,
 *   a PCMA payload through a 256-byte translation table, silence (0xFF) when the tick has
 *   nothing from the source, as the Python tap does.
 * - A fed tap (a player: hold music, a tone): no buffer; the mixer reads the player's frame
 *   for the tick and calls tap.feed(µ-law codes or None) once per tick.
 *
 * While not recording (paused, failed, a role that is not recorded) a tap's frame is popped (and
 * still kept for the mixer) but not appended: nothing of it reaches the sink. Every tap's clock
 * advances by one frame per tick: it is the bridge timestamp of the next frame.
 *
 * tap_frames returns the taps that hold `capacity` samples or more (None when none does), feed
 * returns whether its tap does: the recorder takes their samples with take() (start timestamp,
 * bytes) and hands the batch to its writer thread. So the Python side runs once per batch (1.2 s)
 * per track, not once per tick.
 */
#include "fastpath.h"

#include <string.h>
#include <structmember.h>

#define FRAME 160
#define ULAW_SILENCE 0xFF

typedef struct {
    PyObject_HEAD
    PyObject *buffer; /* the participant's JitterBuffer (JitterCoreType), or None: a fed tap */
    PyObject *owner;  /* whoever takes the full batches (the recorder's sink); None */
    PyObject *participant_id;
    PyObject *frame;    /* the frame the last tick popped (bytes), or None */
    long long clock;    /* bridge timestamp of the next tick's frame */
    long long start;    /* bridge timestamp of data[0] */
    long long capacity; /* samples at which the tap is reported full */
    long long frames;   /* frames appended since creation (statistics) */
    char recording;
    int has_table;
    unsigned char table[256]; /* A-law code -> µ-law code of the same sample */
    unsigned char *data;
    Py_ssize_t count;
    Py_ssize_t allocated;
} Tap;

static int tap_reserve(Tap *t, Py_ssize_t needed) {
    if (needed <= t->allocated) return 0;
    Py_ssize_t size = t->allocated ? t->allocated : FRAME * 64;
    while (size < needed) size *= 2;
    unsigned char *grown = PyMem_Realloc(t->data, (size_t)size);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    t->data = grown;
    t->allocated = size;
    return 0;
}

/* One tick of a tap: append `frame` (bytes, or None for silence) if recording, advance the
 * clock; -1 on a Python error. Always one frame a tick (the bridge's frames are 160 bytes):
 * the track's timeline and the tap's clock stay one. */
static int tap_append(Tap *t, PyObject *frame, int translate) {
    long long timestamp = t->clock;
    t->clock += FRAME;
    if (!t->recording) return 0;
    Py_ssize_t size = frame == Py_None ? 0 : PyBytes_GET_SIZE(frame);
    if (size > FRAME) size = FRAME;
    if (tap_reserve(t, t->count + FRAME) < 0) return -1;
    if (t->count == 0) t->start = timestamp;
    unsigned char *out = t->data + t->count;
    if (size > 0) {
        const unsigned char *in = (const unsigned char *)PyBytes_AS_STRING(frame);
        if (translate) {
            for (Py_ssize_t i = 0; i < size; i++) out[i] = t->table[in[i]];
        } else {
            memcpy(out, in, (size_t)size);
        }
    }
    if (size < FRAME) memset(out + size, ULAW_SILENCE, (size_t)(FRAME - size));
    t->count += FRAME;
    t->frames++;
    return 0;
}

/* One tick of a buffer tap: pop, keep the frame for the mixer, append; -1 on a Python error. */
static int tap_one(Tap *t) {
    PyObject *frame = cw_jitter_pop(t->buffer);
    if (frame == NULL) return -1;
    Py_XSETREF(t->frame, frame); /* the tap's reference now */
    return tap_append(t, frame, t->has_table);
}

static int tap_full(Tap *t) { return t->recording && t->count >= t->capacity; }

static PyObject *tap_frames(PyObject *module, PyObject *taps) {
    if (!PyList_CheckExact(taps)) {
        PyErr_SetString(PyExc_TypeError, "tap_frames(taps): a list of Tap");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(taps);
    for (Py_ssize_t i = 0; i < n; i++) { /* checked first: a bad list changes nothing */
        PyObject *item = PyList_GET_ITEM(taps, i);
        if (Py_TYPE(item) != &TapType) {
            PyErr_SetString(PyExc_TypeError, "tap_frames(taps): a list of Tap");
            return NULL;
        }
        PyObject *buffer = ((Tap *)item)->buffer;
        if (buffer == NULL || buffer == Py_None) {
            PyErr_SetString(PyExc_TypeError, "tap_frames(taps): a fed tap (no buffer) is fed");
            return NULL;
        }
    }
    PyObject *full = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(taps, i);
        Tap *t = (Tap *)item;
        if (tap_one(t) < 0) {
            Py_XDECREF(full);
            return NULL;
        }
        if (tap_full(t)) {
            if (full == NULL && (full = PyList_New(0)) == NULL) return NULL;
            if (PyList_Append(full, item) < 0) {
                Py_DECREF(full);
                return NULL;
            }
        }
    }
    if (full == NULL) Py_RETURN_NONE;
    return full;
}

PyMethodDef cw_tap_functions[] = {
    {"tap_frames", (PyCFunction)tap_frames, METH_O,
     "tap_frames(taps): one tick of every buffer tap; the taps now full, or None."},
    {NULL, NULL, 0, NULL},
};

/* --- the type ---------------------------------------------------------------------------------- */

static PyObject *Tap_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"buffer", "participant_id", "clock", "capacity", "table", NULL};
    PyObject *buffer, *participant_id, *table = Py_None;
    long long clock, capacity;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OULL|O:Tap", keywords, &buffer,
                                     &participant_id, &clock, &capacity, &table))
        return NULL;
    if (buffer != Py_None && Py_TYPE(buffer) != &JitterCoreType) {
        PyErr_SetString(PyExc_TypeError, "a tap's buffer must be a JitterBuffer or None (fed)");
        return NULL;
    }
    if (capacity < 1) {
        PyErr_SetString(PyExc_ValueError, "a tap's capacity must be at least one sample");
        return NULL;
    }
    if (table != Py_None && (!PyBytes_Check(table) || PyBytes_GET_SIZE(table) != 256)) {
        PyErr_SetString(PyExc_ValueError, "a tap's table must be 256 bytes or None");
        return NULL;
    }
    if (table != Py_None && buffer == Py_None) {
        PyErr_SetString(PyExc_ValueError, "a fed tap takes µ-law: no table");
        return NULL;
    }
    Tap *t = (Tap *)type->tp_alloc(type, 0);
    if (t == NULL) return NULL;
    Py_INCREF(buffer);
    t->buffer = buffer;
    Py_INCREF(participant_id);
    t->participant_id = participant_id;
    Py_INCREF(Py_None);
    t->owner = Py_None;
    Py_INCREF(Py_None);
    t->frame = Py_None;
    t->clock = clock;
    t->start = clock;
    t->capacity = capacity;
    t->recording = 1;
    if (table != Py_None) {
        memcpy(t->table, PyBytes_AS_STRING(table), 256);
        t->has_table = 1;
    }
    return (PyObject *)t;
}

static int Tap_traverse(Tap *t, visitproc visit, void *arg) {
    Py_VISIT(t->buffer);
    Py_VISIT(t->owner);
    Py_VISIT(t->participant_id);
    Py_VISIT(t->frame);
    return 0;
}

static int Tap_clear(Tap *t) {
    Py_CLEAR(t->buffer);
    Py_CLEAR(t->owner);
    Py_CLEAR(t->participant_id);
    Py_CLEAR(t->frame);
    return 0;
}

static void Tap_dealloc(Tap *t) {
    PyObject_GC_UnTrack(t);
    Tap_clear(t);
    PyMem_Free(t->data);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static PyObject *Tap_take(Tap *t, PyObject *unused) {
    if (t->count == 0) Py_RETURN_NONE;
    PyObject *codes = PyBytes_FromStringAndSize((const char *)t->data, t->count);
    if (codes == NULL) return NULL;
    PyObject *result = Py_BuildValue("(LN)", t->start, codes);
    if (result == NULL) return NULL;
    t->count = 0;
    t->start = t->clock;
    return result;
}

static PyObject *Tap_feed(Tap *t, PyObject *codes) {
    if (t->buffer == NULL || t->buffer != Py_None) {
        PyErr_SetString(PyExc_TypeError, "feed(codes): only a fed tap (no buffer) is fed");
        return NULL;
    }
    if (codes != Py_None && !PyBytes_CheckExact(codes)) {
        PyErr_SetString(PyExc_TypeError, "feed(codes): µ-law bytes or None");
        return NULL;
    }
    if (tap_append(t, codes, 0) < 0) return NULL;
    return PyBool_FromLong(tap_full(t));
}

static PyObject *Tap_get_owner(Tap *t, void *closure) {
    Py_INCREF(t->owner);
    return t->owner;
}

static int Tap_set_owner(Tap *t, PyObject *value, void *closure) {
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "a tap's owner cannot be deleted (set None)");
        return -1;
    }
    Py_INCREF(value);
    Py_SETREF(t->owner, value);
    return 0;
}

static PyObject *Tap_get_recording(Tap *t, void *closure) { return PyBool_FromLong(t->recording); }

static int Tap_set_recording(Tap *t, PyObject *value, void *closure) {
    int truth = value == NULL ? -1 : PyObject_IsTrue(value);
    if (truth < 0) {
        if (value == NULL) PyErr_SetString(PyExc_AttributeError, "cannot delete recording");
        return -1;
    }
    t->recording = (char)truth;
    return 0;
}

static PyObject *Tap_get_capacity(Tap *t, void *closure) { return PyLong_FromLongLong(t->capacity); }

static int Tap_set_capacity(Tap *t, PyObject *value, void *closure) {
    long long capacity = value == NULL ? -1 : PyLong_AsLongLong(value);
    if (capacity == -1 && PyErr_Occurred()) return -1;
    if (capacity < 1) {
        PyErr_SetString(PyExc_ValueError, "a tap's capacity must be at least one sample");
        return -1;
    }
    t->capacity = capacity;
    return 0;
}

static PyObject *Tap_get_count(Tap *t, void *closure) { return PyLong_FromSsize_t(t->count); }

static PyObject *Tap_get_table(Tap *t, void *closure) {
    if (!t->has_table) Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)t->table, 256);
}

static PyGetSetDef Tap_getset[] = {
    {"owner", (getter)Tap_get_owner, (setter)Tap_set_owner,
     "Who takes this tap's full batches (tap_frames returns the tap; the mixer hands it over).",
     NULL},
    {"recording", (getter)Tap_get_recording, (setter)Tap_set_recording,
     "False: each tick's frame is popped and not appended (paused, failed, not recorded).",
     NULL},
    {"capacity", (getter)Tap_get_capacity, (setter)Tap_set_capacity,
     "Samples at which tap_frames reports the tap full.", NULL},
    {"count", (getter)Tap_get_count, NULL, "Samples gathered and not yet taken.", NULL},
    {"table", (getter)Tap_get_table, NULL, "The A-law to µ-law table, or None.", NULL},
    {NULL},
};

static PyMemberDef Tap_members[] = {
    {"buffer", T_OBJECT, offsetof(Tap, buffer), READONLY,
     "The participant's jitter buffer; None for a fed tap (a player)."},
    {"participant_id", T_OBJECT, offsetof(Tap, participant_id), READONLY, NULL},
    {"frame", T_OBJECT, offsetof(Tap, frame), READONLY,
     "The payload the last tap_frames popped from the buffer (None: nothing that tick)."},
    {"clock", T_LONGLONG, offsetof(Tap, clock), READONLY,
     "The bridge timestamp of the next tick's frame."},
    {"frames", T_LONGLONG, offsetof(Tap, frames), READONLY, "Frames gathered in all."},
    {NULL},
};

static PyMethodDef Tap_methods[] = {
    {"take", (PyCFunction)Tap_take, METH_NOARGS,
     "(start timestamp, µ-law bytes) of what was gathered since the last take, or None."},
    {"feed", (PyCFunction)Tap_feed, METH_O,
     "feed(codes): a fed tap's frame for this tick (160 µ-law bytes, None: silence); "
     "True when the tap is now full."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject TapType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "callwarden.media._fastpath.Tap",
    .tp_doc = "One recorded participant's µ-law track, gathered in C each tick (see tap_frames).",
    .tp_basicsize = sizeof(Tap),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = Tap_new,
    .tp_dealloc = (destructor)Tap_dealloc,
    .tp_traverse = (traverseproc)Tap_traverse,
    .tp_clear = (inquiry)Tap_clear,
    .tp_methods = Tap_methods,
    .tp_members = Tap_members,
    .tp_getset = Tap_getset,
};
