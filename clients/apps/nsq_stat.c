/*
 * nsq_stat: polls /stats of every nsqd producing a topic and prints per-interval rates and
 * aggregate channel figures. The first poll only records a baseline; each later poll prints one
 * row, with the two header lines repeated every 25 rows. Producers come from --nsqd-http-address
 * or from nsqlookupd's /lookup (broadcast_address:http_port). When an nsqd reports the channel's
 * TTL and depth counters (docs/ttl-and-depth.md; not in upstream) two more columns, expired and
 * dropped, end each row; otherwise the output is upstream's.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "app.h"
#include "nsq_net.h"
#include "nsq_time.h"

#define STAT_HEADER_EVERY 25
#define STAT_ACCEPT       "Accept: application/vnd.nsq; version=1.0"

struct totals {
    int64_t depth, backend_depth, in_flight, deferred, requeue, timeout, messages, clients;
    int64_t expired, dropped;
    bool has_limits; /* some nsqd reported expired_count for the channel */
};

struct body {
    char *data;
    size_t len;
};

static size_t on_data(char *ptr, size_t size, size_t n, void *arg)
{
    struct body *b = arg;
    char *grown = realloc(b->data, b->len + size * n + 1);
    if (!grown)
        return 0;
    memcpy(grown + b->len, ptr, size * n);
    b->data = grown;
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

static long g_connect_ms, g_request_ms;

/* GETs url; returns the parsed JSON (legacy {"data":..} unwrapped) or NULL. */
static cJSON *get_json(const char *url, cJSON **root_out)
{
    struct body b = {0};
    long status = 0;
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, STAT_ACCEPT);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, g_connect_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, g_request_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    cJSON *root = NULL;
    if (rc == CURLE_OK && status == 200 && b.data)
        root = cJSON_Parse(b.data);
    else if (rc != CURLE_OK)
        app_log("ERROR: %s - %s", url, curl_easy_strerror(rc));
    free(b.data);
    *root_out = root;
    if (!root)
        return NULL;
    cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    return cJSON_IsObject(data) ? data : root;
}

static int64_t num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

/* Adds the nsqd HTTP addresses producing topic (from every lookupd) to *out. */
static void lookup_producers(const struct nsq_strlist *lookupd, const char *topic,
                             struct nsq_strlist *out)
{
    char url[1024];
    for (size_t i = 0; i < lookupd->len; i++) {
        cJSON *root;
        snprintf(url, sizeof(url), "http://%s/lookup?topic=%s", lookupd->items[i], topic);
        cJSON *o = get_json(url, &root);
        const cJSON *p;
        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(o, "producers"))
        {
            const cJSON *ba = cJSON_GetObjectItemCaseSensitive(p, "broadcast_address");
            char addr[NSQ_NET_ADDRSTRLEN];
            if (!cJSON_IsString(ba) || nsq_join_host_port(ba->valuestring, (int)num(p, "http_port"),
                                                          addr, sizeof(addr)) < 0)
                continue;
            bool dup = false;
            for (size_t k = 0; k < out->len; k++)
                dup = dup || !strcmp(out->items[k], addr);
            if (dup)
                continue;
            out->items = realloc(out->items, (out->len + 1) * sizeof(*out->items));
            out->items[out->len++] = strdup(addr);
        }
        cJSON_Delete(root);
    }
}

/* Sums the channel's figures over every producer. Returns the number of nsqds answering. */
static int poll_stats(const struct nsq_strlist *addrs, const char *topic, const char *channel,
                      struct totals *t)
{
    char url[1024];
    int ok = 0;
    memset(t, 0, sizeof(*t));
    for (size_t i = 0; i < addrs->len; i++) {
        cJSON *root;
        snprintf(url, sizeof(url), "http://%s/stats?format=json&topic=%s&channel=%s",
                 addrs->items[i], topic, channel);
        cJSON *o = get_json(url, &root);
        if (!o)
            continue;
        ok++;
        const cJSON *tp, *ch;
        cJSON_ArrayForEach(tp, cJSON_GetObjectItemCaseSensitive(o, "topics"))
        {
            const cJSON *tn = cJSON_GetObjectItemCaseSensitive(tp, "topic_name");
            if (!cJSON_IsString(tn) || strcmp(tn->valuestring, topic))
                continue;
            cJSON_ArrayForEach(ch, cJSON_GetObjectItemCaseSensitive(tp, "channels"))
            {
                const cJSON *cn = cJSON_GetObjectItemCaseSensitive(ch, "channel_name");
                if (!cJSON_IsString(cn) || strcmp(cn->valuestring, channel))
                    continue;
                t->depth += num(ch, "depth");
                t->backend_depth += num(ch, "backend_depth");
                t->in_flight += num(ch, "in_flight_count");
                t->deferred += num(ch, "deferred_count");
                t->requeue += num(ch, "requeue_count");
                t->timeout += num(ch, "timeout_count");
                t->messages += num(ch, "message_count");
                t->clients += num(ch, "client_count");
                t->expired += num(ch, "expired_count");
                t->dropped += num(ch, "dropped_count");
                t->has_limits |=
                        cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(ch, "expired_count"));
            }
        }
        cJSON_Delete(root);
    }
    return ok;
}

/* The two header lines; limits adds the expired and dropped columns. */
static void print_header(bool limits)
{
    printf("------rate------+----------------depth----------------+"
           "--------------metadata---------------%s\n",
           limits ? "+------limits-----" : "");
    printf("%7s %7s | %7s %7s %7s %5s %5s | %7s %7s %12s %7s", "ingress", "egress", "total", "mem",
           "disk", "inflt", "def", "req", "t-o", "msgs", "clients");
    if (limits)
        printf(" | %7s %7s", "expired", "dropped");
    printf("\n");
}

static void print_row(const struct totals *cur, const struct totals *prev, double secs)
{
    int64_t dmsg = cur->messages - prev->messages;
    int64_t ddepth = cur->depth - prev->depth;
    printf("%7lld %7lld | %7lld %7lld %7lld %5lld %5lld | %7lld %7lld %12lld %7lld",
           (long long)((double)dmsg / secs), (long long)((double)(dmsg - ddepth) / secs),
           (long long)cur->depth, (long long)(cur->depth - cur->backend_depth),
           (long long)cur->backend_depth, (long long)cur->in_flight, (long long)cur->deferred,
           (long long)cur->requeue, (long long)cur->timeout, (long long)cur->messages,
           (long long)cur->clients);
    if (cur->has_limits)
        printf(" | %7lld %7lld", (long long)cur->expired, (long long)cur->dropped);
    printf("\n");
}

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    g_stop = 1;
}

int main(int argc, char **argv)
{
    char *topic = NULL, *channel = NULL;
    int64_t interval = 0, connect_timeout = 0, request_timeout = 0;
    int count = 0;
    struct nsq_strlist nsqd = {0}, lookupd = {0};
    const struct nsq_opt table[] = {
            NSQ_OPT_ENTRY("topic", "", NSQ_OPT_STRING, &topic, "", "NSQ topic"),
            NSQ_OPT_ENTRY("channel", "", NSQ_OPT_STRING, &channel, "", "NSQ channel"),
            NSQ_OPT_ENTRY("interval", "", NSQ_OPT_DURATION, &interval, "2s",
                          "duration of time between polling/printing output"),
            NSQ_OPT_ENTRY("count", "", NSQ_OPT_INT, &count, "0",
                          "number of reports (0 means forever)"),
            NSQ_OPT_ENTRY("http-client-connect-timeout", "", NSQ_OPT_DURATION, &connect_timeout,
                          "2s", "timeout for HTTP connect"),
            NSQ_OPT_ENTRY("http-client-request-timeout", "", NSQ_OPT_DURATION, &request_timeout,
                          "5s", "timeout for HTTP request"),
            NSQ_OPT_ENTRY("nsqd-http-address", "", NSQ_OPT_STRING_LIST, &nsqd, NULL,
                          "nsqd HTTP address (may be given multiple times)"),
            NSQ_OPT_ENTRY("lookupd-http-address", "", NSQ_OPT_STRING_LIST, &lookupd, NULL,
                          "lookupd HTTP address (may be given multiple times)"),
    };
    const size_t ntable = sizeof(table) / sizeof(table[0]);
    app_parse_options(table, ntable, "nsq_stat", argc, argv);

    if (!topic[0] || !channel[0])
        app_fatal("--topic and --channel are required");
    if (interval <= 0)
        app_fatal("--interval should be positive");
    if (count < 0)
        app_fatal("--count should be positive");
    if (nsqd.len == 0 && lookupd.len == 0)
        app_fatal("--nsqd-http-address or --lookupd-http-address required");
    if (nsqd.len > 0 && lookupd.len > 0)
        app_fatal("use --nsqd-http-address or --lookupd-http-address not both");
    for (size_t i = 0; i < nsqd.len; i++)
        if (strstr(nsqd.items[i], "://"))
            app_fatal("--nsqd-http-address should not contain a scheme");
    for (size_t i = 0; i < lookupd.len; i++)
        if (strstr(lookupd.items[i], "://"))
            app_fatal("--lookupd-http-address should not contain a scheme");
    g_connect_ms = (long)(connect_timeout / NSQ_NS_PER_MS);
    g_request_ms = (long)(request_timeout / NSQ_NS_PER_MS);

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    struct totals prev = {0}, cur;
    bool have_prev = false;
    int rows = 0;
    bool header_limits = false;
    double secs = (double)interval / 1e9;
    while (!g_stop) {
        struct nsq_strlist addrs = {0};
        if (lookupd.len > 0)
            lookup_producers(&lookupd, topic, &addrs);
        int ok = poll_stats(lookupd.len > 0 ? &addrs : &nsqd, topic, channel, &cur);
        for (size_t i = 0; i < addrs.len; i++)
            free(addrs.items[i]);
        free(addrs.items);
        if (ok == 0)
            app_log("ERROR: failed to get any stats");
        if (have_prev && ok > 0) {
            if (rows % STAT_HEADER_EVERY == 0 || cur.has_limits != header_limits) {
                print_header(cur.has_limits);
                header_limits = cur.has_limits;
            }
            print_row(&cur, &prev, secs);
            fflush(stdout);
            rows++;
            if (count > 0 && rows >= count)
                break;
        }
        if (ok > 0) {
            prev = cur;
            have_prev = true;
        }
        struct timespec ts = {.tv_sec = interval / NSQ_NS_PER_SEC,
                              .tv_nsec = interval % NSQ_NS_PER_SEC};
        nanosleep(&ts, NULL);
    }
    curl_global_cleanup();
    nsq_options_free(table, ntable);
    return 0;
}
