/* callwarden.media._fastpath: the per-packet path of the media engine in C.
 *
 * Four "core" types hold the fields of the media engine's per-packet objects in C structs:
 * the Python classes subclass them (OutgoingStream(StreamCore), ReceptionStatistics(ReceptionCore),
 * RtpEndpoint(EndpointCore), Member(MemberCore)), so Python and C read and write the same memory
 * and nothing is ever copied between them. The Pump reads every RTP socket of an engine
 * (epoll + recvmmsg) and relays, in C, the packets of the plain case: from the accepted peer,
 * valid RTP, the endpoint's audio payload type, to a bridge member heard only by fast-path
 * listeners. Every other packet goes to the endpoint's Python datagram_received unchanged.
 */
#ifndef CALLWARDEN_FASTPATH_H
#define CALLWARDEN_FASTPATH_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

/* RFC 3550 A.1 limits, as in stream.py and reception.py. */
#define CW_MAX_DROPOUT 3000
#define CW_MAX_MISORDER 100
#define CW_SEQ_MOD 65536LL
#define CW_FRAME_SECONDS 0.020
#define CW_GAP_SECONDS 0.050

typedef struct {
    PyObject_HEAD
    long long ssrc;
    long long sequence_number; /* the last sent */
    long long timestamp;       /* the last sent */
    long long payload_type;
    long long clock_rate;
    long long frame_samples;
    long long packets;
    long long octets;
    long long seq_offset;
    long long ts_offset;
    double last_send;
    int has_last_send;
    char sending;
    int fd;              /* the socket the pump sends from; -1: Python's transport only */
    PyObject *source;    /* _source: the member forwarded from, or None */
    PyObject *address;   /* (host, port) or None */
    struct sockaddr_storage dest;
    socklen_t dest_len;  /* 0: address is None or not an IP literal */
} StreamCore;

typedef struct {
    PyObject_HEAD
    long long clock_rate;
    long long ssrc;
    int has_ssrc;
    long long base_seq;
    long long max_seq;
    long long cycles;
    long long received;
    long long bad_seq;
    long long received_prior;
    long long expected_prior;
    long long last_timestamp;
    long long last_sr;
    double last_arrival;
    double jitter;
    double last_sr_arrival;
} ReceptionCore;

typedef struct {
    PyObject_HEAD
    PyObject *peer_key;  /* _peer_key: (host, port[, flowinfo, scope_id]) or None */
    struct sockaddr_storage peer;
    socklen_t peer_len;  /* 0: no peer, or one that is not an IP literal */
    char enabled;
    char fixed;
    char latch;
    long long payload_type;
    long long packets_in;
    long long bytes_in;
    long long dropped_foreign;
    long long dropped_early;
    long long dropped_malformed;
    double last_receive;
    int has_last_receive;
    PyObject *reception; /* a ReceptionCore */
    PyObject *sink;      /* a MemberCore, or anything else (then Python handles audio) */
    PyObject *now;       /* _now: the engine's monotonic clock */
} EndpointCore;

typedef struct {
    PyObject_HEAD
    double last_active;
    PyObject *fast_listeners; /* list of StreamCore */
    PyObject *buffer;         /* None while no mixed listener hears this member */
} MemberCore;

extern PyTypeObject StreamCoreType;
extern PyTypeObject ReceptionCoreType;
extern PyTypeObject EndpointCoreType;
extern PyTypeObject MemberCoreType;
extern PyTypeObject PumpType;
extern PyTypeObject JitterCoreType;
extern PyTypeObject TapType;
extern PyMethodDef cw_tap_functions[];

/* An IP literal tuple as the socket layer reports it -> sockaddr; returns the length or 0. */
socklen_t cw_parse_address(PyObject *address, struct sockaddr_storage *out);
/* The Python form of a source address: (host, port) or (host, port, flowinfo, scope_id). */
PyObject *cw_address_tuple(const struct sockaddr_storage *address);
/* RFC 3550 5.1 framing: payload bounds, or -1 for a malformed packet. */
int cw_payload_bounds(const unsigned char *data, size_t size, size_t *start, size_t *end);
/* ReceptionStatistics.update (RFC 3550 A.1, A.8). */
void cw_reception_update(ReceptionCore *r, long long ssrc, long long seq, long long timestamp,
                         double arrival);
/* OutgoingStream.forward's numbering: fills the 12-byte header and accounts the packet. */
void cw_stream_forward(StreamCore *s, PyObject *source, size_t payload_size, int marker,
                       long long sequence_number, long long timestamp, double now,
                       unsigned char header[12]);

/* JitterBuffer.push of a JitterCoreType buffer, from the pump: no Python call. */
int cw_jitter_push_bytes(PyObject *buffer, long long sequence_number, const unsigned char *data,
                         size_t size);

/* JitterBuffer.pop of a JitterCoreType buffer: a new reference (None: nothing this tick). */
PyObject *cw_jitter_pop(PyObject *buffer);

#endif
