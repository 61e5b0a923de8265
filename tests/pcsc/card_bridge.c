/* card_bridge: the pcsc test suite's smartcard. A libcacard virtual CAC card (its keys in an NSS database that
 * points at a SoftHSM2 token) put into vsmartcard's vpcd reader driver, so pcscd and OpenSC see a card that signs.
 *
 * vpcd protocol (TCP, the bridge connects): every message is a 2-byte big-endian length and a payload; a payload of
 * one byte is a control code (0 power off, 1 power on, 2 reset, 4 ask for the ATR), anything longer is a command APDU
 * that gets a response APDU back. Closing the connection is removing the card.
 *
 * Two things a real card does that libcacard does not, done here so the agent's PIN rules meet card-like behaviour:
 *  - VERIFY: a wrong PIN answers 63Cx (x tries left) and the card blocks after the last try (6983 from then on, even
 *    for the right PIN). libcacard answers 6985 and never blocks. The tries left live in a file, so they survive a
 *    removal like a real card's counter. Every VERIFY that carries a PIN is logged, so a test can count attempts.
 *  - identity: every libcacard card has the same serial. --serial-xor flips the card number in the card capability
 *    container that OpenSC reads the token serial from, so the same keys can be presented as "another card".
 *  - a card that stops answering: while --stall-file exists, commands get no answer (logged "stalled", then
 *    "answering" when the file is gone).
 *
 * usage: card_bridge --nssdb DIR --port PORT [--pin-state FILE] [--pin-tries N] [--log FILE]
 *                    [--serial-xor BYTE] [--sign-delay-ms MS] [--stall-file FILE] [--trace]
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libcacard.h>

enum { MAX_MSG = 65535 };
enum { INS_VERIFY = 0x20, INS_CAC_SIGN = 0x42 };

struct options {
    const char *nssdb;
    int port;
    const char *pin_state;
    int pin_tries;
    const char *log_path;
    int serial_xor;
    int sign_delay_ms;
    const char *stall_file;
    int trace;
};

static FILE *event_log;

static void log_event(const char *fmt, ...) {
    if (!event_log) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(event_log, fmt, ap);
    va_end(ap);
    fputc('\n', event_log);
    fflush(event_log);
}

/* vpcd sends the length and the body in two writes: without QUICKACK before every read our delayed ACK holds its
 * second write behind Nagle, 40-80 ms per APDU. */
static int read_exact(int fd, unsigned char *buf, size_t n) {
    size_t got = 0;
    int one = 1;
    while (got < n) {
        setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

/* One write per message (with TCP_NODELAY): a header and a body in two writes cost the same 40 ms. */
static int send_message(int fd, const unsigned char *payload, size_t n) {
    static unsigned char msg[MAX_MSG + 2];
    if (n > MAX_MSG) return -1;
    msg[0] = (unsigned char)(n >> 8);
    msg[1] = (unsigned char)(n & 0xff);
    memcpy(msg + 2, payload, n);
    return write(fd, msg, n + 2) == (ssize_t)(n + 2) ? 0 : -1;
}

static int read_tries(const struct options *o) {
    if (!o->pin_state) return o->pin_tries;
    FILE *f = fopen(o->pin_state, "r");
    if (!f) return o->pin_tries;
    int tries = o->pin_tries;
    if (fscanf(f, "%d", &tries) != 1) tries = o->pin_tries;
    fclose(f);
    return tries;
}

static void write_tries(const struct options *o, int tries) {
    if (!o->pin_state) return;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", o->pin_state);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    fprintf(f, "%d\n", tries);
    fclose(f);
    rename(tmp, o->pin_state);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* libcacard's card identifier (the first 21 bytes of the CCC's value buffer: the GCP RID A0 00 00 00 79, a
 * manufacturer and card type, then the card's number) is the same on every virtual card; OpenSC takes the token
 * serial from its last 8 bytes. When the bridge plays another card it flips the last 6 of them. */
static const unsigned char CCC_CARD_ID_PREFIX[] = {0xA0, 0x00, 0x00, 0x00, 0x79, 0x03};
enum { CCC_CARD_ID_LEN = 21, CARD_NUMBER_FLIPPED = 6 };

static void disguise_identity(const struct options *o, unsigned char *resp, int len) {
    if (!o->serial_xor || len < CCC_CARD_ID_LEN + 2) return;
    if (memcmp(resp, CCC_CARD_ID_PREFIX, sizeof CCC_CARD_ID_PREFIX) != 0) return;
    for (int i = CCC_CARD_ID_LEN - CARD_NUMBER_FLIPPED; i < CCC_CARD_ID_LEN; i++) resp[i] ^= (unsigned char)o->serial_xor;
}

static void trace_bytes(const struct options *o, const char *dir, const unsigned char *b, int n) {
    if (!o->trace) return;
    fprintf(stderr, "%s", dir);
    for (int i = 0; i < n; i++) fprintf(stderr, " %02X", b[i]);
    fprintf(stderr, "\n");
}

/* VERIFY: the card-like retry counter wraps libcacard's answer. Without a PIN (Lc absent or 0) it asks for the
 * state: 9000 when verified, else 63Cx with the tries left (what OpenSC turns into the token's PIN flags). */
static int handle_verify(const struct options *o, VReader *reader, unsigned char *apdu, int n, unsigned char *resp) {
    int tries = read_tries(o);
    if (n <= 5 || apdu[4] == 0) {
        int rlen = MAX_MSG;
        if (tries > 0 && vreader_xfr_bytes(reader, apdu, n, resp, &rlen) == VREADER_OK && rlen == 2 &&
            resp[0] == 0x90 && resp[1] == 0x00)
            return rlen;
        resp[0] = tries > 0 ? 0x63 : 0x69;
        resp[1] = tries > 0 ? (unsigned char)(0xC0 | (tries & 0x0F)) : 0x83;
        return 2;
    }
    if (tries <= 0) {
        log_event("verify blocked");
        resp[0] = 0x69;
        resp[1] = 0x83;
        return 2;
    }
    int rlen = MAX_MSG;
    if (vreader_xfr_bytes(reader, apdu, n, resp, &rlen) != VREADER_OK || rlen < 2) {
        resp[0] = 0x6F;
        resp[1] = 0x00;
        return 2;
    }
    if (resp[rlen - 2] == 0x90 && resp[rlen - 1] == 0x00) {
        write_tries(o, o->pin_tries);
        log_event("verify ok");
        return rlen;
    }
    tries--;
    write_tries(o, tries);
    log_event("verify wrong tries-left=%d", tries);
    if (tries <= 0) {
        resp[0] = 0x69;
        resp[1] = 0x83;
    } else {
        resp[0] = 0x63;
        resp[1] = (unsigned char)(0xC0 | (tries & 0x0F));
    }
    return 2;
}

static int parse_options(int argc, char **argv, struct options *o) {
    *o = (struct options){.pin_tries = 3};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--trace")) {
            o->trace = 1;
            continue;
        }
        if (!v) return -1;
        i++;
        if (!strcmp(a, "--nssdb")) o->nssdb = v;
        else if (!strcmp(a, "--port")) o->port = atoi(v);
        else if (!strcmp(a, "--pin-state")) o->pin_state = v;
        else if (!strcmp(a, "--pin-tries")) o->pin_tries = atoi(v);
        else if (!strcmp(a, "--log")) o->log_path = v;
        else if (!strcmp(a, "--serial-xor")) o->serial_xor = (int)strtol(v, NULL, 0) & 0xff;
        else if (!strcmp(a, "--sign-delay-ms")) o->sign_delay_ms = atoi(v);
        else if (!strcmp(a, "--stall-file")) o->stall_file = v;
        else return -1;
    }
    return o->nssdb && o->port > 0 && o->port < 65536 && o->pin_tries > 0 && o->pin_tries < 16 ? 0 : -1;
}

static VReader *find_card(void) {
    for (int attempt = 0; attempt < 100; attempt++) {
        VReaderList *list = vreader_get_reader_list();
        VReader *found = NULL;
        for (VReaderListEntry *e = vreader_list_get_first(list); e && !found; e = vreader_list_get_next(e)) {
            VReader *r = vreader_list_get_reader(e);
            if (vreader_card_is_present(r) == VREADER_OK) found = r;
            else vreader_free(r);
        }
        vreader_list_delete(list);
        if (found) return found;
        sleep_ms(50);
    }
    return NULL;
}

/* A card that stops answering: while the stall file exists, a command gets no answer (the card is still in the
 * reader, PC/SC sees nothing wrong). Removing the file lets the card answer what it was sent. */
static void stall_while_asked(const struct options *o) {
    if (!o->stall_file || access(o->stall_file, F_OK) != 0) return;
    log_event("stalled");
    while (access(o->stall_file, F_OK) == 0) sleep_ms(20);
    log_event("answering");
}

int main(int argc, char **argv) {
    struct options o;
    if (parse_options(argc, argv, &o) != 0) {
        fprintf(stderr,
                "usage: %s --nssdb DIR --port PORT [--pin-state FILE] [--pin-tries N] [--log FILE] "
                "[--serial-xor BYTE] [--sign-delay-ms MS] [--stall-file FILE] [--trace]\n",
                argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (o.log_path && !(event_log = fopen(o.log_path, "a"))) {
        fprintf(stderr, "card_bridge: cannot open the log %s: %s\n", o.log_path, strerror(errno));
        return 1;
    }
    char emul_opts[4200];
    snprintf(emul_opts, sizeof emul_opts, "db=\"sql:%s\" use_hw=removable", o.nssdb);
    if (vcard_emul_init(vcard_emul_options(emul_opts)) != VCARD_EMUL_OK) {
        fprintf(stderr, "card_bridge: libcacard could not open the NSS database %s\n", o.nssdb);
        return 1;
    }
    VReader *reader = find_card();
    if (!reader) {
        fprintf(stderr, "card_bridge: no token with certificates in %s (module added with modutil? certificates?)\n",
                o.nssdb);
        return 1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "card_bridge: cannot connect to vpcd on 127.0.0.1:%d: %s\n", o.port, strerror(errno));
        return 1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    log_event("inserted");
    fprintf(stderr, "card_bridge: card '%s' in vpcd 127.0.0.1:%d\n", vreader_get_name(reader), o.port);

    static unsigned char apdu[MAX_MSG], resp[MAX_MSG];
    for (;;) {
        unsigned char hdr[2];
        if (read_exact(fd, hdr, 2) != 0) break;
        int n = (hdr[0] << 8) | hdr[1];
        if (read_exact(fd, apdu, (size_t)n) != 0) break;
        if (n == 1) {
            if (apdu[0] == 0) vreader_power_off(reader);
            else if (apdu[0] == 1) vreader_power_on(reader, NULL, NULL);
            else if (apdu[0] == 2) {
                vreader_power_off(reader);
                vreader_power_on(reader, NULL, NULL);
            } else if (apdu[0] == 4) {
                unsigned char atr[40];
                int alen = sizeof atr;
                vcard_emul_get_atr(NULL, atr, &alen);
                if (send_message(fd, atr, (size_t)alen) != 0) break;
            }
            continue;
        }
        trace_bytes(&o, ">", apdu, n);
        stall_while_asked(&o);
        int rlen;
        if (n >= 4 && apdu[1] == INS_VERIFY) {
            rlen = handle_verify(&o, reader, apdu, n, resp);
        } else {
            if (n >= 4 && apdu[1] == INS_CAC_SIGN && o.sign_delay_ms > 0) sleep_ms(o.sign_delay_ms);
            rlen = MAX_MSG;
            if (vreader_xfr_bytes(reader, apdu, n, resp, &rlen) != VREADER_OK) rlen = 0;
            disguise_identity(&o, resp, rlen);
        }
        trace_bytes(&o, "<", resp, rlen);
        if (send_message(fd, resp, (size_t)rlen) != 0) break;
    }
    log_event("removed");
    vreader_free(reader);
    return 0;
}
