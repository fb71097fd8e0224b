/*
 * nsq.h: the NSQ client library (libnsq) — producers and consumers for nsqd, on libevent.
 *
 * Everything runs on an event_base the caller owns and drives (event_base_dispatch); callbacks are
 * invoked from that loop, never from another thread. None of the objects is thread-safe: use each
 * from the thread running its base. The synchronous publish calls drive the base themselves and
 * must therefore not be called from inside a callback of the same base (they return -EDEADLK).
 * A producer or consumer must not be freed from inside one of its own callbacks; stop it there
 * and free it after the loop returns.
 *
 * Errors: functions return 0 or a negative errno value. Where nsqd answered with an error frame,
 * the callback receives -NSQ_ESERVER and the frame text ("E_BAD_TOPIC PUB topic name ...").
 *
 * Configuration uses the option names of the reference Go client (go-nsq), so command lines that
 * pass "--consumer-opt=key,value" keep working:
 *
 *   dial_timeout 1s, read_timeout 60s, write_timeout 1s, lookupd_poll_interval 60s,
 *   lookupd_poll_jitter 0.3, lookupd_poll_timeout 1m, max_requeue_delay 15m,
 *   default_requeue_delay 90s, backoff_strategy exponential|full_jitter, max_backoff_duration 2m,
 *   backoff_multiplier 1s, max_attempts 5, low_rdy_idle_timeout 10s, low_rdy_timeout 30s,
 *   rdy_redistribute_interval 5s, client_id (short hostname), hostname, user_agent,
 *   heartbeat_interval 30s, sample_rate 0, tls_v1, tls_root_ca_file, tls_insecure_skip_verify,
 *   tls_cert, tls_key, tls_min_version, deflate, deflate_level 6, snappy,
 *   output_buffer_size 16384, output_buffer_timeout 250ms, max_in_flight 1, msg_timeout 0,
 *   auth_secret, topology_region, topology_zone.
 *
 * topology_region / topology_zone tell nsqd where the consumer runs (sent in IDENTIFY only when
 * set): an nsqd with the topology-aware-consumption experiment and the same zone (or region)
 * delivers to such consumers first (docs/topology.md). The tools take them as
 * --consumer-opt=topology_zone,<zone>.
 *
 * Durations use Go syntax ("250ms", "1m30s"); booleans "true"/"false"/"1"/"0".
 */
#ifndef NSQ_H
#define NSQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct event_base;

#define NSQ_LIB_VERSION "1.3.0"

/* nsqd answered with an error frame (the callback's error text holds it). */
#define NSQ_ESERVER 1000

/* ---- configuration ---- */

struct nsq_config; /* opaque */

/* A configuration with every default. Caller frees with nsq_config_free. */
struct nsq_config *nsq_config_new(void);
void nsq_config_free(struct nsq_config *cfg);
/* Sets one option by name from text. Returns 0, -ENOENT (unknown option) or -EINVAL (bad value). */
int nsq_config_set(struct nsq_config *cfg, const char *key, const char *value);
/* Parses "key,value" (or "key" alone, meaning "true") as the tools' --consumer-opt and
   --producer-opt do. Returns as nsq_config_set. */
int nsq_config_set_opt(struct nsq_config *cfg, const char *key_comma_value);
/* A short human description of a negative return code of this library. Static storage. */
const char *nsq_strerror(int err);

/* ---- producer: publishes to one nsqd ---- */

struct nsq_producer; /* opaque */

/*
 * Completion of an asynchronous publish: err 0 when nsqd answered OK; -NSQ_ESERVER with nsqd's
 * error text; another negative errno (text describing it) when the connection failed or closed
 * before the answer. `text` is valid during the call only.
 */
typedef void (*nsq_publish_cb)(int err, const char *text, void *arg);

/*
 * A producer for the nsqd at addr ("host:port"). base may be NULL: the producer then creates and
 * owns a private base, suitable for the synchronous calls only. The configuration is copied.
 * The connection is made lazily by the first publish, and made again after a failure.
 * Returns NULL on allocation failure or a malformed address.
 */
struct nsq_producer *nsq_producer_new(struct event_base *base, const char *addr,
                                      const struct nsq_config *cfg);
/* Closes the connection; pending publishes complete with -ECANCELED. NULL is a no-op. */
void nsq_producer_free(struct nsq_producer *p);

/* Asynchronous forms: queue the command (connecting if needed) and return 0, or a negative code
   if it could not even be queued (then cb is not called). cb may be NULL. */
int nsq_producer_publish_async(struct nsq_producer *p, const char *topic, const void *body,
                               size_t len, nsq_publish_cb cb, void *arg);
int nsq_producer_multi_publish_async(struct nsq_producer *p, const char *topic,
                                     const void *const *bodies, const size_t *lens, size_t n,
                                     nsq_publish_cb cb, void *arg);
int nsq_producer_deferred_publish_async(struct nsq_producer *p, const char *topic, int64_t delay_ms,
                                        const void *body, size_t len, nsq_publish_cb cb, void *arg);

/* Synchronous forms: return 0 once nsqd answered OK, or the error; the text of the last error is
   kept in nsq_producer_last_error. They run the producer's base until the answer arrives. */
int nsq_producer_publish(struct nsq_producer *p, const char *topic, const void *body, size_t len);
int nsq_producer_multi_publish(struct nsq_producer *p, const char *topic, const void *const *bodies,
                               const size_t *lens, size_t n);
int nsq_producer_deferred_publish(struct nsq_producer *p, const char *topic, int64_t delay_ms,
                                  const void *body, size_t len);
/* Text of the last failure ("" if none). Valid until the next call on p. */
const char *nsq_producer_last_error(const struct nsq_producer *p);
/* Number of publishes sent and not yet answered. */
size_t nsq_producer_pending(const struct nsq_producer *p);
/*
 * Time-to-live, in milliseconds from publication, of the messages of every later publish (PUB,
 * MPUB and DPUB, synchronous or not); 0 (the default) sets none. Not an upstream NSQ feature: it
 * appends nsqd's optional trailing parameter ("PUB <topic> <ttl_ms>"), and nsqd drops a message
 * that has not been delivered when its TTL passes (docs/ttl-and-depth.md). Upstream nsqd ignores
 * the parameter (the messages never expire). Returns 0, or -EINVAL outside 0..4294967295.
 */
int nsq_producer_set_msg_ttl(struct nsq_producer *p, int64_t ttl_ms);

/* ---- consumer: one topic/channel from many nsqds ---- */

struct nsq_consumer; /* opaque */

/* A delivered message. The library owns it; see the handler for its lifetime. */
struct nsq_message {
    char id[16];       /* not NUL-terminated */
    int64_t timestamp; /* publish time, Unix ns */
    uint16_t attempts; /* deliveries so far, this one included */
    const uint8_t *body;
    size_t body_len;
    const char *nsqd_address; /* "host:port" of the nsqd that delivered it */
};

/*
 * Called for each message. Return 0 to finish it (FIN) or non-zero to requeue it with the default
 * delay (default_requeue_delay × attempts, capped by max_requeue_delay) and a backoff signal —
 * unless the handler called nsq_message_disable_auto_response(msg): then the message stays alive
 * after the return and the caller must answer it exactly once later with nsq_message_finish or
 * nsq_message_requeue (which release it). Messages whose attempts exceed max_attempts are
 * finished without calling the handler.
 */
typedef int (*nsq_handler_fn)(struct nsq_message *msg, void *arg);

/*
 * A consumer of topic/channel with handler fn. max_in_flight (from cfg) bounds the messages held
 * by the handler across all connections. Returns NULL on allocation failure or invalid names.
 */
struct nsq_consumer *nsq_consumer_new(struct event_base *base, const char *topic,
                                      const char *channel, const struct nsq_config *cfg,
                                      nsq_handler_fn fn, void *arg);
/* Connects directly to an nsqd ("host:port"); reconnects after a close. 0, -EEXIST, -EINVAL. */
int nsq_consumer_connect_nsqd(struct nsq_consumer *c, const char *addr);
/* Adds an nsqlookupd HTTP address ("host:port" or "http://host:port") polled for producers of the
   topic. 0, -EEXIST, -EINVAL. */
int nsq_consumer_connect_lookupd(struct nsq_consumer *c, const char *addr);
/* Changes max_in_flight (redistributes RDY at once). */
void nsq_consumer_set_max_in_flight(struct nsq_consumer *c, int max_in_flight);
/*
 * Graceful stop: no more discovery, CLS on every connection, wait for in-flight messages to be
 * answered (at most 30 s), close. `stopped` (may be NULL) is called once everything is closed.
 */
void nsq_consumer_stop(struct nsq_consumer *c, void (*stopped)(void *arg), void *arg);
bool nsq_consumer_stopped(const struct nsq_consumer *c);
/* Frees the consumer (closing connections abruptly if not stopped). Every message kept with
   nsq_message_disable_auto_response must have been answered before. NULL is a no-op. */
void nsq_consumer_free(struct nsq_consumer *c);

struct nsq_consumer_stats {
    uint64_t messages_received;
    uint64_t messages_finished;
    uint64_t messages_requeued;
    int connections;   /* connections subscribed now */
    int in_flight;     /* messages held by the handler now */
    int backoff_level; /* 0 when not backing off */
};
void nsq_consumer_get_stats(const struct nsq_consumer *c, struct nsq_consumer_stats *out);

/* Messages kept by nsq_message_disable_auto_response are answered with these (exactly once). */
void nsq_message_disable_auto_response(struct nsq_message *msg);
/* FIN, then release msg. */
void nsq_message_finish(struct nsq_message *msg);
/* REQ with delay_ms (-1: the default delay) and a backoff signal, then release msg. */
void nsq_message_requeue(struct nsq_message *msg, int64_t delay_ms);
/* REQ without a backoff signal, then release msg. */
void nsq_message_requeue_no_backoff(struct nsq_message *msg, int64_t delay_ms);
/* TOUCH: resets the message's timeout on nsqd. msg stays alive. */
void nsq_message_touch(struct nsq_message *msg);

#ifdef __cplusplus
}
#endif

#endif
