/*
 * nsq_to_file: writes the messages of topics to files, one line (body + "\n") per message.
 *
 * One consumer and one output file per topic. File names come from --filename-format (tokens
 * <TOPIC>, <HOST>, <PID>, <DATETIME>, <REV>); a file is written in --work-dir and moved to
 * --output-dir when closed. A file is closed and the next one opened when <DATETIME> changes,
 * after --rotate-size bytes or --rotate-interval, and on SIGHUP.
 *
 * Durability: messages are FINed only after the file holding them was flushed and fsynced. A sync
 * happens when max-in-flight messages are held (the consumer can receive no more), every
 * --sync-interval, and when no message arrived for a short while (starved). With --gzip each sync
 * ends a gzip member, so a file is a concatenation of gzip streams, readable by any gunzip.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <zlib.h>

#include "app.h"
#include "nsq.h"
#include "nsq_log.h"
#include "nsq_net.h"
#include "nsq_time.h"

#define IDLE_SYNC_MS 100 /* "starved": no message for this long → sync */
#define GZ_CHUNK     65536

struct options {
    char *channel, *output_dir, *work_dir, *datetime_format, *filename_format, *host_identifier;
    char *topic_pattern, *log_level, *log_prefix;
    bool gzip, skip_empty;
    int gzip_level, max_in_flight;
    int64_t rotate_size, rotate_interval, sync_interval, topic_refresh;
    int64_t http_connect_timeout, http_request_timeout;
    struct nsq_strlist topics, nsqd, lookupd, copts;
};

struct app;

struct writer {
    struct app *a;
    char *topic;
    struct nsq_consumer *consumer;
    FILE *f;
    char work_path[PATH_MAX], out_path[PATH_MAX];
    char datetime[128];
    int64_t opened_ns;
    int64_t size;
    z_stream z;
    bool z_ready, z_dirty;
    struct nsq_message **held;
    size_t nheld, cap;
    struct event *idle_ev;
    bool stopped;
};

struct app {
    struct options o;
    struct event_base *base;
    struct nsq_config *cfg;
    struct writer **writers;
    size_t nwriters;
    regex_t pattern;
    bool has_pattern, stopping;
    size_t stopped;
    struct event *sync_ev, *refresh_ev;
    char host[256];
};

/* ---- file naming ---- */

static void replace_all(char *s, size_t cap, const char *token, const char *value)
{
    char buf[PATH_MAX];
    char *p;
    while ((p = strstr(s, token)) != NULL) {
        snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(p - s), s, value, p + strlen(token));
        snprintf(s, cap, "%s", buf);
    }
}

static void file_name(struct writer *w, int rev, char *out, size_t cap)
{
    const struct options *o = &w->a->o;
    char revs[16], pid[16];
    snprintf(out, cap, "%s", o->filename_format);
    snprintf(revs, sizeof(revs), "-%06d", rev);
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    replace_all(out, cap, "<TOPIC>", w->topic);
    replace_all(out, cap, "<HOST>", w->a->host);
    replace_all(out, cap, "<PID>", pid);
    replace_all(out, cap, "<DATETIME>", w->datetime);
    replace_all(out, cap, "<REV>", revs);
    if (o->gzip && (strlen(out) < 3 || strcmp(out + strlen(out) - 3, ".gz") != 0))
        strncat(out, ".gz", cap - strlen(out) - 1);
}

static void current_datetime(const struct options *o, char *out, size_t cap)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    /* the format is the user's --datetime-format */
    if (strftime(out, cap, o->datetime_format, &tm) == 0)
        out[0] = '\0';
#pragma GCC diagnostic pop
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- writing ---- */

static int write_plain(struct writer *w, const void *data, size_t len)
{
    if (fwrite(data, 1, len, w->f) != len)
        return -EIO;
    w->size += (int64_t)len;
    return 0;
}

static int deflate_out(struct writer *w, int flush)
{
    uint8_t out[GZ_CHUNK];
    int rc;
    do {
        w->z.next_out = out;
        w->z.avail_out = sizeof(out);
        rc = deflate(&w->z, flush);
        if (rc == Z_STREAM_ERROR)
            return -EIO;
        if (write_plain(w, out, sizeof(out) - w->z.avail_out) < 0)
            return -EIO;
    } while (w->z.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
    return 0;
}

static int write_bytes(struct writer *w, const void *data, size_t len)
{
    if (!w->a->o.gzip)
        return write_plain(w, data, len);
    w->z.next_in = (Bytef *)(uintptr_t)data;
    w->z.avail_in = (uInt)len;
    w->z_dirty = true;
    return deflate_out(w, Z_NO_FLUSH);
}

static int open_file(struct writer *w)
{
    const struct options *o = &w->a->o;
    bool has_rev = strstr(o->filename_format, "<REV>") != NULL;
    char name[NAME_MAX + 1];
    current_datetime(o, w->datetime, sizeof(w->datetime));
    for (int rev = 0;; rev++) {
        file_name(w, rev, name, sizeof(name));
        snprintf(w->work_path, sizeof(w->work_path), "%s/%s", o->work_dir, name);
        snprintf(w->out_path, sizeof(w->out_path), "%s/%s", o->output_dir, name);
        if (!has_rev || (!exists(w->work_path) && !exists(w->out_path)))
            break;
    }
    w->f = fopen(w->work_path, "a");
    if (!w->f) {
        nsq_error("unable to open %s: %s", w->work_path, strerror(errno));
        return -errno;
    }
    nsq_info("[%s] opening %s", w->topic, w->work_path);
    w->opened_ns = nsq_mono_ns();
    w->size = 0;
    if (o->gzip) {
        memset(&w->z, 0, sizeof(w->z));
        if (deflateInit2(&w->z, o->gzip_level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return -ENOMEM;
        w->z_ready = true;
        w->z_dirty = false;
    }
    return 0;
}

/* Flush, fsync and finish every held message. */
static void sync_writer(struct writer *w)
{
    if (w->f) {
        if (w->a->o.gzip && w->z_dirty) {
            deflate_out(w, Z_FINISH); /* ends this gzip member */
            deflateReset(&w->z);
            w->z_dirty = false;
        }
        if (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0)
            nsq_error("[%s] sync failed: %s", w->topic, strerror(errno));
    }
    for (size_t i = 0; i < w->nheld; i++)
        nsq_message_finish(w->held[i]);
    w->nheld = 0;
}

static void close_file(struct writer *w)
{
    sync_writer(w);
    if (!w->f)
        return;
    fclose(w->f);
    w->f = NULL;
    if (w->z_ready) {
        deflateEnd(&w->z);
        w->z_ready = false;
    }
    if (strcmp(w->work_path, w->out_path) != 0) {
        nsq_info("[%s] moving %s to %s", w->topic, w->work_path, w->out_path);
        if (rename(w->work_path, w->out_path) != 0)
            nsq_error("[%s] unable to move file: %s", w->topic, strerror(errno));
    }
}

static bool needs_rotation(struct writer *w)
{
    const struct options *o = &w->a->o;
    char now[128];
    current_datetime(o, now, sizeof(now));
    if (strcmp(now, w->datetime) != 0)
        return true;
    if (o->rotate_size > 0 && w->size > o->rotate_size)
        return true;
    if (o->rotate_interval > 0 && nsq_mono_ns() - w->opened_ns >= o->rotate_interval)
        return true;
    return false;
}

static void idle_cb(evutil_socket_t fd, short what, void *arg)
{
    sync_writer(arg);
}

static int handle(struct nsq_message *m, void *arg)
{
    struct writer *w = arg;
    if (w->f && needs_rotation(w))
        close_file(w);
    if (!w->f && open_file(w) < 0)
        return -1;
    if (write_bytes(w, m->body, m->body_len) < 0 || write_bytes(w, "\n", 1) < 0) {
        nsq_error("[%s] write failed", w->topic);
        return -1;
    }
    if (w->nheld == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        struct nsq_message **grown = realloc(w->held, cap * sizeof(*grown));
        if (!grown)
            return -1;
        w->held = grown;
        w->cap = cap;
    }
    nsq_message_disable_auto_response(m);
    w->held[w->nheld++] = m;
    if ((int)w->nheld >= w->a->o.max_in_flight || w->a->stopping) {
        sync_writer(w);
    } else {
        struct timeval tv = {0, IDLE_SYNC_MS * 1000};
        evtimer_add(w->idle_ev, &tv);
    }
    return 0;
}

/* ---- topics ---- */

static void on_consumer_stopped(void *arg)
{
    struct writer *w = arg;
    struct app *a = w->a;
    w->stopped = true;
    close_file(w);
    if (++a->stopped == a->nwriters)
        event_base_loopexit(a->base, NULL);
}

static struct writer *add_topic(struct app *a, const char *topic)
{
    for (size_t i = 0; i < a->nwriters; i++)
        if (!strcmp(a->writers[i]->topic, topic))
            return a->writers[i];
    struct writer *w = calloc(1, sizeof(*w));
    w->a = a;
    w->topic = strdup(topic);
    w->idle_ev = evtimer_new(a->base, idle_cb, w);
    w->consumer = nsq_consumer_new(a->base, topic, a->o.channel, a->cfg, handle, w);
    if (!w->consumer)
        app_fatal("invalid topic or channel name (%s, %s)", topic, a->o.channel);
    app_connect_sources(w->consumer, &a->o.nsqd, &a->o.lookupd);
    a->writers = realloc(a->writers, (a->nwriters + 1) * sizeof(*a->writers));
    a->writers[a->nwriters++] = w;
    if (!a->o.skip_empty && open_file(w) < 0)
        app_fatal("unable to open output file for %s", topic);
    nsq_info("[%s] consuming on channel %s", topic, a->o.channel);
    return w;
}

static size_t on_body(char *ptr, size_t size, size_t n, void *arg)
{
    struct nsq_strlist *b = arg; /* items[0] accumulates the body */
    size_t len = b->len;
    char *grown = realloc(b->items[0], len + size * n + 1);
    if (!grown)
        return 0;
    memcpy(grown + len, ptr, size * n);
    grown[len + size * n] = '\0';
    b->items[0] = grown;
    b->len = len + size * n;
    return size * n;
}

/* Asks every lookupd for its topics and follows the new ones matching --topic-pattern. */
static void refresh_topics(struct app *a)
{
    for (size_t i = 0; i < a->o.lookupd.len; i++) {
        char url[1024];
        char *bodyp = NULL;
        struct nsq_strlist body = {&bodyp, 0};
        const char *addr = a->o.lookupd.items[i];
        snprintf(url, sizeof(url), "%s%s/topics", strstr(addr, "://") ? "" : "http://", addr);
        CURL *h = curl_easy_init();
        struct curl_slist *hdr =
                curl_slist_append(NULL, "Accept: application/vnd.nsq; version=1.0");
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(a->o.http_connect_timeout / 1000000));
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(a->o.http_request_timeout / 1000000));
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        CURLcode rc = curl_easy_perform(h);
        curl_slist_free_all(hdr);
        curl_easy_cleanup(h);
        if (rc != CURLE_OK || !bodyp) {
            nsq_error("failed to query %s: %s", url, curl_easy_strerror(rc));
            free(bodyp);
            continue;
        }
        cJSON *root = cJSON_Parse(bodyp);
        const cJSON *obj = cJSON_GetObjectItemCaseSensitive(root, "data");
        const cJSON *t;
        cJSON_ArrayForEach(
                t, cJSON_GetObjectItemCaseSensitive(cJSON_IsObject(obj) ? obj : root, "topics"))
        {
            if (!cJSON_IsString(t))
                continue;
            if (a->has_pattern && regexec(&a->pattern, t->valuestring, 0, NULL, 0) != 0)
                continue;
            add_topic(a, t->valuestring);
        }
        cJSON_Delete(root);
        free(bodyp);
    }
}

static void refresh_cb(evutil_socket_t fd, short what, void *arg)
{
    struct app *a = arg;
    if (!a->stopping)
        refresh_topics(a);
}

static void sync_cb(evutil_socket_t fd, short what, void *arg)
{
    struct app *a = arg;
    for (size_t i = 0; i < a->nwriters; i++) {
        struct writer *w = a->writers[i];
        sync_writer(w);
        if (w->f && a->o.rotate_interval > 0 && needs_rotation(w))
            close_file(w);
    }
}

static void stop_all(void *arg)
{
    struct app *a = arg;
    if (a->stopping)
        return;
    a->stopping = true;
    if (a->nwriters == 0) {
        event_base_loopexit(a->base, NULL);
        return;
    }
    for (size_t i = 0; i < a->nwriters; i++) {
        sync_writer(a->writers[i]); /* held messages are answered so the consumers can drain */
        nsq_consumer_stop(a->writers[i]->consumer, on_consumer_stopped, a->writers[i]);
    }
}

static void reopen_all(void *arg)
{
    struct app *a = arg;
    for (size_t i = 0; i < a->nwriters; i++)
        close_file(a->writers[i]);
}

static void host_identifier(struct app *a)
{
    char hostname[256], shorthost[256];
    nsq_hostname(hostname, sizeof(hostname));
    snprintf(shorthost, sizeof(shorthost), "%s", hostname);
    char *dot = strchr(shorthost, '.');
    if (dot)
        *dot = '\0';
    if (!a->o.host_identifier[0]) {
        snprintf(a->host, sizeof(a->host), "%s", shorthost);
        return;
    }
    snprintf(a->host, sizeof(a->host), "%s", a->o.host_identifier);
    replace_all(a->host, sizeof(a->host), "<SHORT_HOST>", shorthost);
    replace_all(a->host, sizeof(a->host), "<HOSTNAME>", hostname);
}

int main(int argc, char **argv)
{
    struct app a = {0};
    struct options *o = &a.o;
    const struct nsq_opt table[] = {
            NSQ_OPT_ENTRY("log-level", "", NSQ_OPT_STRING, &o->log_level, "info",
                          "set log verbosity: debug, info, warn, error, or fatal"),
            NSQ_OPT_ENTRY("log-prefix", "", NSQ_OPT_STRING, &o->log_prefix, "[nsq_to_file] ",
                          "log message prefix"),
            NSQ_OPT_ENTRY("channel", "", NSQ_OPT_STRING, &o->channel, "nsq_to_file", "nsq channel"),
            NSQ_OPT_ENTRY("max-in-flight", "", NSQ_OPT_INT, &o->max_in_flight, "200",
                          "max number of messages to allow in flight"),
            NSQ_OPT_ENTRY("output-dir", "", NSQ_OPT_STRING, &o->output_dir, "/tmp",
                          "directory to write output files to"),
            NSQ_OPT_ENTRY("work-dir", "", NSQ_OPT_STRING, &o->work_dir, "",
                          "directory for in-progress files before moving to output-dir"),
            NSQ_OPT_ENTRY("datetime-format", "", NSQ_OPT_STRING, &o->datetime_format, "%Y-%m-%d_%H",
                          "strftime compatible format for <DATETIME> in filename format"),
            NSQ_OPT_ENTRY("filename-format", "", NSQ_OPT_STRING, &o->filename_format,
                          "<TOPIC>.<HOST><REV>.<DATETIME>.log", "output filename format"),
            NSQ_OPT_ENTRY("host-identifier", "", NSQ_OPT_STRING, &o->host_identifier, "",
                          "value to output in log filename in place of hostname"),
            NSQ_OPT_ENTRY("gzip", "", NSQ_OPT_BOOL, &o->gzip, "false", "gzip output files."),
            NSQ_OPT_ENTRY("gzip-level", "", NSQ_OPT_INT, &o->gzip_level, "6",
                          "gzip compression level (1-9, 1=BestSpeed, 9=BestCompression)"),
            NSQ_OPT_ENTRY("skip-empty-files", "", NSQ_OPT_BOOL, &o->skip_empty, "false",
                          "skip writing empty files"),
            NSQ_OPT_ENTRY("topic", "", NSQ_OPT_STRING_LIST, &o->topics, NULL,
                          "nsq topic (may be given multiple times)"),
            NSQ_OPT_ENTRY("topic-pattern", "", NSQ_OPT_STRING, &o->topic_pattern, "",
                          "only log topics matching the following pattern"),
            NSQ_OPT_ENTRY("topic-refresh", "", NSQ_OPT_DURATION, &o->topic_refresh, "1m",
                          "how frequently the topic list should be refreshed"),
            NSQ_OPT_ENTRY("rotate-size", "", NSQ_OPT_INT64, &o->rotate_size, "0",
                          "rotate the file when it grows bigger than `rotate-size` bytes"),
            NSQ_OPT_ENTRY("rotate-interval", "", NSQ_OPT_DURATION, &o->rotate_interval, "0",
                          "rotate the file every duration"),
            NSQ_OPT_ENTRY("sync-interval", "", NSQ_OPT_DURATION, &o->sync_interval, "30s",
                          "sync file to disk every duration"),
            NSQ_OPT_ENTRY("http-client-connect-timeout", "", NSQ_OPT_DURATION,
                          &o->http_connect_timeout, "2s", "timeout for HTTP connect"),
            NSQ_OPT_ENTRY("http-client-request-timeout", "", NSQ_OPT_DURATION,
                          &o->http_request_timeout, "5s", "timeout for HTTP request"),
            NSQ_OPT_ENTRY("nsqd-tcp-address", "", NSQ_OPT_STRING_LIST, &o->nsqd, NULL,
                          "nsqd TCP address (may be given multiple times)"),
            NSQ_OPT_ENTRY("lookupd-http-address", "", NSQ_OPT_STRING_LIST, &o->lookupd, NULL,
                          "lookupd HTTP address (may be given multiple times)"),
            NSQ_OPT_ENTRY("consumer-opt", "", NSQ_OPT_STRING_LIST, &o->copts, NULL,
                          "option to passthrough to nsq.Consumer (may be given multiple times)"),
    };
    const size_t ntable = sizeof(table) / sizeof(table[0]);
    app_parse_options(table, ntable, "nsq_to_file", argc, argv);

    enum nsq_log_level level;
    if (nsq_log_parse_level(o->log_level, &level) < 0)
        app_fatal("invalid log level %s", o->log_level);
    nsq_log_init(o->log_prefix, level);

    if (!o->channel[0])
        app_fatal("--channel is required");
    app_check_sources(&o->nsqd, &o->lookupd);
    if (o->gzip_level < 1 || o->gzip_level > 9)
        app_fatal("invalid --gzip-level value (%d), should be 1-9", o->gzip_level);
    if (o->topics.len == 0 && !o->topic_pattern[0])
        app_fatal("--topic or --topic-pattern required");
    if (o->topics.len == 0 && o->lookupd.len == 0)
        app_fatal("--lookupd-http-address must be specified when no --topic specified");
    if (!o->work_dir[0]) {
        free(o->work_dir);
        o->work_dir = strdup(o->output_dir);
    }
    bool need_rev = o->gzip || o->rotate_size > 0 || o->rotate_interval > 0 ||
                    strcmp(o->work_dir, o->output_dir) != 0;
    if (!strstr(o->filename_format, "<REV>")) {
        if (need_rev)
            app_fatal("missing <REV> in --filename-format when gzip, rotation, or work dir "
                      "enabled");
    } else if (!need_rev) {
        char *f = o->filename_format;
        replace_all(f, strlen(f) + 1, "<REV>", "");
    }
    if (o->topic_pattern[0]) {
        if (regcomp(&a.pattern, o->topic_pattern, REG_EXTENDED | REG_NOSUB) != 0)
            app_fatal("invalid --topic-pattern %s", o->topic_pattern);
        a.has_pattern = true;
    }
    host_identifier(&a);
    mkdir(o->output_dir, 0770);
    mkdir(o->work_dir, 0770);

    a.base = event_base_new();
    a.cfg = nsq_config_new();
    app_set_user_agent(a.cfg, "nsq_to_file");
    app_apply_opts(a.cfg, &o->copts, "consumer-opt");
    char mif[32];
    snprintf(mif, sizeof(mif), "%d", o->max_in_flight);
    nsq_config_set(a.cfg, "max_in_flight", mif);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    for (size_t i = 0; i < o->topics.len; i++)
        add_topic(&a, o->topics.items[i]);
    if (o->topics.len == 0) {
        refresh_topics(&a);
        struct timeval tv = {o->topic_refresh / NSQ_NS_PER_SEC,
                             (o->topic_refresh % NSQ_NS_PER_SEC) / 1000};
        a.refresh_ev = event_new(a.base, -1, EV_PERSIST, refresh_cb, &a);
        event_add(a.refresh_ev, &tv);
    }
    if (o->sync_interval > 0) {
        struct timeval tv = {o->sync_interval / NSQ_NS_PER_SEC,
                             (o->sync_interval % NSQ_NS_PER_SEC) / 1000};
        a.sync_ev = event_new(a.base, -1, EV_PERSIST, sync_cb, &a);
        event_add(a.sync_ev, &tv);
    }
    struct app_signals *sig = app_signals_new(a.base, stop_all, reopen_all, &a);
    event_base_dispatch(a.base);
    app_signals_free(sig);

    for (size_t i = 0; i < a.nwriters; i++) {
        struct writer *w = a.writers[i];
        close_file(w);
        nsq_consumer_free(w->consumer);
        event_free(w->idle_ev);
        free(w->held);
        free(w->topic);
        free(w);
    }
    free(a.writers);
    if (a.sync_ev)
        event_free(a.sync_ev);
    if (a.refresh_ev)
        event_free(a.refresh_ev);
    if (a.has_pattern)
        regfree(&a.pattern);
    nsq_config_free(a.cfg);
    event_base_free(a.base);
    curl_global_cleanup();
    nsq_options_free(table, ntable);
    return 0;
}
