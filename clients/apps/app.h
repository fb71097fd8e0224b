/*
 * app: what the command-line utilities share: Go-log-style fatal errors, the source flags
 * (--nsqd-tcp-address / --lookupd-http-address) and their validation, --consumer-opt /
 * --producer-opt application, and a stop-on-signal helper for event loops.
 */
#ifndef NSQ_APP_H
#define NSQ_APP_H

#include <stdbool.h>
#include <stddef.h>

#include "nsq.h"
#include "nsq_options.h"

struct event_base;
struct event;

/* Prints "YYYY/MM/DD HH:MM:SS <msg>" to stderr as Go's log package does. */
void app_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* app_log, then exit(1). */
void app_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* The usual "--nsqd-tcp-address or --lookupd-http-address required" / "... not both" checks
   (fatal on failure). */
void app_check_sources(const struct nsq_strlist *nsqd, const struct nsq_strlist *lookupd);

/* Applies each "key,value" of opts to cfg (fatal with the option's name on failure). */
void app_apply_opts(struct nsq_config *cfg, const struct nsq_strlist *opts, const char *flag);

/* Sets the user agent "<tool>/<version> libnsq/<version>". */
void app_set_user_agent(struct nsq_config *cfg, const char *tool);

/* Connects c to every source (fatal on an invalid address). */
void app_connect_sources(struct nsq_consumer *c, const struct nsq_strlist *nsqd,
                         const struct nsq_strlist *lookupd);

/* Parses the command line with the shared table conventions; exits on --help/--version (0) and on
   errors (2). */
void app_parse_options(const struct nsq_opt *table, size_t n, const char *program, int argc,
                       char **argv);

/* Calls fn(arg) from the loop on SIGINT and SIGTERM (and on SIGHUP if hup is set, with
   hup(arg)). The returned events are freed by app_signals_free. */
struct app_signals;
struct app_signals *app_signals_new(struct event_base *base, void (*fn)(void *),
                                    void (*hup)(void *), void *arg);
void app_signals_free(struct app_signals *s);

/* Parses a float flag value (NSQ_OPT_CUSTOM parse callback for a double target). */
int app_parse_double(const char *text, void *target);

#endif
