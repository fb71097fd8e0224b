/*
 * app: shared pieces of the command-line utilities.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "app.h"
#include "nsq_version.h"

__attribute__((format(printf, 1, 0))) static void vlog(const char *fmt, va_list ap)
{
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y/%m/%d %H:%M:%S", &tm);
    fprintf(stderr, "%s ", ts);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void app_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}

void app_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
    exit(1);
}

void app_check_sources(const struct nsq_strlist *nsqd, const struct nsq_strlist *lookupd)
{
    if (nsqd->len == 0 && lookupd->len == 0)
        app_fatal("--nsqd-tcp-address or --lookupd-http-address required");
    if (nsqd->len > 0 && lookupd->len > 0)
        app_fatal("use --nsqd-tcp-address or --lookupd-http-address not both");
}

void app_apply_opts(struct nsq_config *cfg, const struct nsq_strlist *opts, const char *flag)
{
    for (size_t i = 0; i < opts->len; i++) {
        int rc = nsq_config_set_opt(cfg, opts->items[i]);
        if (rc == -ENOENT)
            app_fatal("failed to process --%s (%s) - invalid option", flag, opts->items[i]);
        if (rc < 0)
            app_fatal("failed to process --%s (%s) - invalid value", flag, opts->items[i]);
    }
}

void app_set_user_agent(struct nsq_config *cfg, const char *tool)
{
    char ua[128];
    snprintf(ua, sizeof(ua), "%s/%s libnsq/%s", tool, NSQ_VERSION, NSQ_LIB_VERSION);
    nsq_config_set(cfg, "user_agent", ua);
}

void app_connect_sources(struct nsq_consumer *c, const struct nsq_strlist *nsqd,
                         const struct nsq_strlist *lookupd)
{
    for (size_t i = 0; i < nsqd->len; i++) {
        int rc = nsq_consumer_connect_nsqd(c, nsqd->items[i]);
        if (rc < 0 && rc != -EEXIST)
            app_fatal("failed to connect to %s - %s", nsqd->items[i], nsq_strerror(rc));
    }
    for (size_t i = 0; i < lookupd->len; i++) {
        int rc = nsq_consumer_connect_lookupd(c, lookupd->items[i]);
        if (rc < 0 && rc != -EEXIST)
            app_fatal("failed to connect to %s - %s", lookupd->items[i], nsq_strerror(rc));
    }
}

void app_parse_options(const struct nsq_opt *table, size_t n, const char *program, int argc,
                       char **argv)
{
    char err[512];
    int rc = nsq_options_parse(table, n, program, argc, argv, err, sizeof(err));
    if (rc == NSQ_OPTIONS_EXIT)
        exit(0);
    if (rc == NSQ_OPTIONS_FLAG_ERROR) {
        fprintf(stderr, "%s\n", err);
        nsq_options_usage(table, n, program, stderr);
        exit(2);
    }
    if (rc < 0)
        app_fatal("%s", err);
}

struct app_signals {
    struct event *ev[3];
    void (*fn)(void *);
    void (*hup)(void *);
    void *arg;
};

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct app_signals *s = arg;
    if (sig == SIGHUP && s->hup)
        s->hup(s->arg);
    else
        s->fn(s->arg);
}

struct app_signals *app_signals_new(struct event_base *base, void (*fn)(void *),
                                    void (*hup)(void *), void *arg)
{
    static const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
    struct app_signals *s = calloc(1, sizeof(*s));
    if (!s)
        app_fatal("out of memory");
    s->fn = fn;
    s->hup = hup;
    s->arg = arg;
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < (hup ? 3 : 2); i++) {
        s->ev[i] = evsignal_new(base, sigs[i], on_signal, s);
        if (!s->ev[i] || event_add(s->ev[i], NULL) < 0)
            app_fatal("cannot install signal handlers");
    }
    return s;
}

void app_signals_free(struct app_signals *s)
{
    if (!s)
        return;
    for (int i = 0; i < 3; i++)
        if (s->ev[i])
            event_free(s->ev[i]);
    free(s);
}

int app_parse_double(const char *text, void *target)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || *text == '\0' || *end)
        return -EINVAL;
    *(double *)target = v;
    return 0;
}
