/* RTP load generator and meter for benchmarks/media.py (built by it with the system C compiler).
 *
 * Binds COUNT UDP sockets on 127.0.0.1 from BASE_PORT up, prints "ready", reads COUNT destination
 * ports (one line, space separated) and then sends a 172-byte G.711-sized RTP packet every 20 ms
 * from every socket to its destination, each stream at its own phase of the 20 ms period. The
 * payload carries the send time (CLOCK_REALTIME ns), the stream index and a sequence number. On
 * every socket it receives what the relay under test forwarded, takes the kernel receive time
 * (SO_TIMESTAMPNS) and records the one-way delay and the RFC 3550 transit difference
 * |(R_j - R_i) - (S_j - S_i)| per originating stream. Packets sent during the warm-up are sent but
 * not counted. At the end it prints one JSON line of counts and percentiles (microseconds).
 *
 * Usage: rtpgen COUNT BASE_PORT DURATION_S WARMUP_S
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#define PERIOD_NS 20000000LL
#define PACKET 172
#define BINS 200000 /* 10 us bins up to 2 s */
#define BIN_NS 10000LL

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t latency_hist[BINS], jitter_hist[BINS], lag_hist[BINS];

static void record(uint64_t *hist, int64_t ns) {
    if (ns < 0) ns = -ns;
    int64_t bin = ns / BIN_NS;
    if (bin >= BINS) bin = BINS - 1;
    hist[bin]++;
}

static double percentile(const uint64_t *hist, double q) {
    uint64_t total = 0, seen = 0;
    for (int i = 0; i < BINS; i++) total += hist[i];
    if (!total) return -1;
    uint64_t target = (uint64_t)(q * (double)total);
    if (target >= total) target = total - 1;
    for (int i = 0; i < BINS; i++) {
        seen += hist[i];
        if (seen > target) return (i + 0.5) * (BIN_NS / 1000.0);
    }
    return -1;
}

static double maximum(const uint64_t *hist) {
    for (int i = BINS - 1; i >= 0; i--)
        if (hist[i]) return (i + 1) * (BIN_NS / 1000.0);
    return -1;
}

static void print_stats(const char *name, const uint64_t *hist) {
    printf("\"%s\": {\"p50\": %.1f, \"p90\": %.1f, \"p99\": %.1f, \"p999\": %.1f, \"max\": %.1f}",
           name, percentile(hist, 0.5), percentile(hist, 0.9), percentile(hist, 0.99),
           percentile(hist, 0.999), maximum(hist));
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: rtpgen COUNT BASE_PORT DURATION_S WARMUP_S\n");
        return 2;
    }
    int count = atoi(argv[1]);
    int base_port = atoi(argv[2]);
    double duration = atof(argv[3]), warmup = atof(argv[4]);
    int *fds = calloc(count, sizeof(int));
    struct sockaddr_in *dest = calloc(count, sizeof(struct sockaddr_in));
    uint32_t *seq = calloc(count, sizeof(uint32_t));
    uint64_t *sent_counted = calloc(count, sizeof(uint64_t));
    uint64_t *received = calloc(count, sizeof(uint64_t));
    int64_t *last_send = calloc(count, sizeof(int64_t));
    int64_t *last_recv = calloc(count, sizeof(int64_t));
    int epfd = epoll_create1(0);
    for (int i = 0; i < count; i++) {
        fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        int one = 1, size = 1 << 20;
        setsockopt(fds[i], SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
        setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
        struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons(base_port + i)};
        inet_pton(AF_INET, "127.0.0.1", &local.sin_addr);
        if (bind(fds[i], (struct sockaddr *)&local, sizeof local) < 0) {
            fprintf(stderr, "bind %d: %s\n", base_port + i, strerror(errno));
            return 1;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(epfd, EPOLL_CTL_ADD, fds[i], &ev);
    }
    printf("ready\n");
    fflush(stdout);
    for (int i = 0; i < count; i++) {
        int port;
        if (scanf("%d", &port) != 1) {
            fprintf(stderr, "missing destination %d\n", i);
            return 1;
        }
        dest[i].sin_family = AF_INET;
        dest[i].sin_port = htons(port);
        inet_pton(AF_INET, "127.0.0.1", &dest[i].sin_addr);
    }
    unsigned char packet[PACKET], buffer[2048];
    char control[256];
    memset(packet, 0xFF, sizeof packet);
    packet[0] = 0x80;
    packet[1] = 0x00;
    int64_t start = now_ns() + 20000000LL;
    int64_t count_from = start + (int64_t)(warmup * 1e9);
    int64_t stop_sending = start + (int64_t)(duration * 1e9);
    int64_t stop = stop_sending + 500000000LL; /* drain */
    int64_t cycle = 0;
    int cursor = 0;
    uint64_t total_sent = 0, counted_sent = 0, counted_received = 0, foreign = 0;
    struct epoll_event events[256];
    for (;;) {
        int64_t now = now_ns();
        if (now >= stop) break;
        int64_t due = start + cycle * PERIOD_NS + (PERIOD_NS * cursor) / count;
        /* Send everything that is due. */
        while (due <= now && due < stop_sending) {
            int i = cursor;
            int64_t t = now_ns();
            record(lag_hist, t - due);
            uint32_t s = seq[i]++;
            uint16_t s16 = htons((uint16_t)s);
            uint32_t ts = htonl(s * 160), ssrc = htonl(0x10000 + i);
            memcpy(packet + 2, &s16, 2);
            memcpy(packet + 4, &ts, 4);
            memcpy(packet + 8, &ssrc, 4);
            memcpy(packet + 12, &t, 8);
            uint32_t idx = (uint32_t)i;
            memcpy(packet + 20, &idx, 4);
            memcpy(packet + 24, &s, 4);
            if (sendto(fds[i], packet, PACKET, 0, (struct sockaddr *)&dest[i], sizeof dest[i]) == PACKET) {
                total_sent++;
                if (t >= count_from) {
                    counted_sent++;
                    sent_counted[i]++;
                }
            }
            if (++cursor == count) {
                cursor = 0;
                cycle++;
            }
            due = start + cycle * PERIOD_NS + (PERIOD_NS * cursor) / count;
        }
        int64_t wait_ns = (due < stop_sending ? due : stop) - now_ns();
        if (wait_ns < 0) wait_ns = 0;
        struct timespec timeout = {.tv_sec = wait_ns / 1000000000LL, .tv_nsec = wait_ns % 1000000000LL};
        int n = epoll_pwait2(epfd, events, 256, &timeout, NULL);
        for (int e = 0; e < n; e++) {
            int fd = fds[events[e].data.u32];
            for (;;) {
                struct iovec iov = {.iov_base = buffer, .iov_len = sizeof buffer};
                struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                                     .msg_controllen = sizeof control};
                ssize_t got = recvmsg(fd, &msg, 0);
                if (got < 0) break;
                if (got < 12 || buffer[1] >= 200) continue; /* RTCP from the relay */
                int cc = buffer[0] & 0x0F;
                size_t offset = 12 + 4 * (size_t)cc;
                if ((size_t)got < offset + 16) {
                    foreign++;
                    continue;
                }
                int64_t arrival = 0;
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
                    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                        struct timespec ts;
                        memcpy(&ts, CMSG_DATA(c), sizeof ts);
                        arrival = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
                    }
                if (!arrival) arrival = now_ns();
                int64_t sent;
                uint32_t origin;
                memcpy(&sent, buffer + offset, 8);
                memcpy(&origin, buffer + offset + 8, 4);
                if (origin >= (uint32_t)count || sent < start) {
                    foreign++;
                    continue;
                }
                if (last_recv[origin] && last_send[origin] >= count_from)
                    record(jitter_hist, (arrival - last_recv[origin]) - (sent - last_send[origin]));
                last_recv[origin] = arrival;
                last_send[origin] = sent;
                if (sent >= count_from) {
                    counted_received++;
                    received[origin]++;
                    record(latency_hist, arrival - sent);
                }
            }
        }
    }
    uint64_t worst_stream_lost = 0;
    for (int i = 0; i < count; i++) {
        uint64_t lost = sent_counted[i] > received[i] ? sent_counted[i] - received[i] : 0;
        if (lost > worst_stream_lost) worst_stream_lost = lost;
    }
    printf("{\"streams\": %d, \"sent\": %llu, \"counted_sent\": %llu, \"counted_received\": %llu, "
           "\"unexpected\": %llu, \"worst_stream_lost\": %llu, ",
           count, (unsigned long long)total_sent, (unsigned long long)counted_sent,
           (unsigned long long)counted_received, (unsigned long long)foreign,
           (unsigned long long)worst_stream_lost);
    print_stats("latency_us", latency_hist);
    printf(", ");
    print_stats("jitter_us", jitter_hist);
    printf(", ");
    print_stats("send_lag_us", lag_hist);
    printf("}\n");
    return 0;
}
