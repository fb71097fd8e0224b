/*
 * cli: command-line subcommands over the API operations (see cli.h).
 *
 * Flags and positional arguments may be interleaved ("nsqadmin stats --json orders"). The flags
 * are nsqadmin's own (--lookupd-http-address, --nsqd-http-address, --http-client-*, and --config
 * for a config file read before the flags) plus --json
 * and --rate-interval (stats: time between the two samples the msgs/s column is computed from;
 * 0 disables it). The operation runs on a private event loop with the asynchronous clusterinfo,
 * so every node is asked in parallel and a dead node costs one request timeout.
 */
#include "cli.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "api.h"
#include "clusterinfo.h"
#include "nsq_http_client.h"
#include "nsq_log.h"
#include "nsq_names.h"
#include "nsq_options.h"
#include "nsqadmin.h"

#define PROGRAM               "nsqadmin"
#define CLI_MAX_POSITIONAL    8
#define CLI_DEFAULT_RATE_WAIT "1s"
#define NS_PER_SEC_D          1e9
#define NS_PER_SEC            1000000000LL
#define CLI_ERR_LEN           1024 /* an option or usage error message */
#define CLI_CONFIG_FLAG_LEN   4096 /* "--config=<path>" */

struct cli_cmd {
    const char *name;
    int min_args, max_args;
    const char *args_help;
    const char *help;
};

static const struct cli_cmd commands[] = {
        {"topics", 0, 0, "", "list topics"},
        {"channels", 1, 1, "<topic>", "list the channels of a topic"},
        {"nodes", 0, 0, "", "list nsqd nodes"},
        {"stats", 1, 2, "<topic> [<channel>]",
         "depth, in-flight, msgs/s and clients per node, and totals"},
        {"pause", 1, 2, "<topic> [<channel>]", "pause a topic or channel"},
        {"unpause", 1, 2, "<topic> [<channel>]", "unpause a topic or channel"},
        {"empty", 1, 2, "<topic> [<channel>]", "empty a topic or channel"},
        {"delete", 1, 2, "<topic> [<channel>]", "delete a topic or channel"},
        {"create", 1, 2, "<topic> [<channel>]", "create a topic (and channel)"},
        {"tombstone", 2, 2, "<topic> <node>",
         "tombstone a topic's producer <node> (broadcast_address:http_port)"},
};

static const struct cli_cmd *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

void cli_usage(FILE *out)
{
    fprintf(out, "\nCommand-line mode:\n  %s <command> [arguments] [flags]\n\nCommands:\n",
            PROGRAM);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-10s %-22s %s\n", commands[i].name, commands[i].args_help,
                commands[i].help);
    fprintf(out, "\nCommand flags (besides --lookupd-http-address / --nsqd-http-address and the "
                 "--http-client-* flags):\n"
                 "  -json\n\tprint the API's JSON answer instead of a table\n"
                 "  -rate-interval duration\n\tstats: time between the two samples msgs/s is "
                 "computed from, 0 to skip (default 1s)\n"
                 "\nExit codes: 0 success, 2 partial failure (some nodes failed), 1 failure, "
                 "64 usage error.\n");
}

/* ---- argument parsing ---- */

struct cli_opts {
    struct nsqadmin_options admin;
    bool json;
    int64_t rate_interval;
    struct nsq_opt table[NSQADMIN_NUM_OPTIONS + 2];
    size_t n;
    const char *pos[CLI_MAX_POSITIONAL];
    size_t npos;
    const char *config; /* --config file, applied before the flags */
};

static void cli_table(struct cli_opts *o)
{
    o->n = nsqadmin_options_table(&o->admin, o->table);
    o->table[o->n++] =
            (struct nsq_opt)NSQ_OPT_ENTRY("json", "", NSQ_OPT_BOOL, &o->json, NULL, "print JSON");
    o->table[o->n++] =
            (struct nsq_opt)NSQ_OPT_ENTRY("rate-interval", "", NSQ_OPT_DURATION, &o->rate_interval,
                                          CLI_DEFAULT_RATE_WAIT, "stats sampling interval");
}

static const struct nsq_opt *find_flag(const struct cli_opts *o, const char *name, size_t len)
{
    for (size_t i = 0; i < o->n; i++)
        if (strlen(o->table[i].flag) == len && strncmp(o->table[i].flag, name, len) == 0)
            return &o->table[i];
    return NULL;
}

/* Splits argv into flags (applied) and positionals. Returns 0 or -EINVAL with err set. With
   apply false only the positionals are collected (flags with values are still skipped). */
static int parse_args(struct cli_opts *o, int argc, char **argv, bool apply, char *err,
                      size_t errlen)
{
    bool only_pos = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            if (o->npos == CLI_MAX_POSITIONAL) {
                snprintf(err, errlen, "too many arguments");
                return -EINVAL;
            }
            o->pos[o->npos++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        const char *name = a + (a[1] == '-' ? 2 : 1);
        const char *eq = strchr(name, '=');
        size_t nlen = eq != NULL ? (size_t)(eq - name) : strlen(name);
        if (nlen == strlen("config") && strncmp(name, "config", nlen) == 0) {
            if (eq == NULL && i + 1 >= argc) {
                snprintf(err, errlen, "flag needs an argument: -config");
                return -EINVAL;
            }
            o->config = eq != NULL ? eq + 1 : argv[++i];
            continue;
        }
        const struct nsq_opt *opt = find_flag(o, name, nlen);
        if (opt == NULL && !apply)
            continue; /* only looking for a command word: reported when the command runs */
        if (opt == NULL) {
            snprintf(err, errlen, "flag provided but not defined: -%.*s", (int)nlen, name);
            return -EINVAL;
        }
        const char *value = eq != NULL ? eq + 1 : NULL;
        if (value == NULL && opt->type != NSQ_OPT_BOOL) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "flag needs an argument: -%s", opt->flag);
                return -EINVAL;
            }
            value = argv[++i];
        }
        if (apply && nsq_options_set(opt, value != NULL ? value : "true") != 0) {
            snprintf(err, errlen, "invalid value \"%s\" for flag -%s", value, opt->flag);
            return -EINVAL;
        }
    }
    return 0;
}

bool cli_wanted(int argc, char **argv)
{
    struct cli_opts *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return false;
    cli_table(o);
    char err[256];
    /* any positional argument means command-line mode (an unknown word is a usage error) */
    bool wanted = parse_args(o, argc, argv, false, err, sizeof(err)) == 0 && o->npos > 0;
    free(o);
    return wanted;
}

bool cli_help_requested(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0 ||
            strcmp(argv[i], "-help") == 0 || strcmp(argv[i], "--h") == 0)
            return true;
    return false;
}

/* ---- running one operation ---- */

struct cli_run {
    struct event_base *base;
    struct api_call *call;
    bool done;
};

static void on_done(struct api_call *call)
{
    struct cli_run *r = call->arg;
    r->done = true;
    event_base_loopbreak(r->base);
}

/* Runs call to completion on base. */
static void run_call(struct event_base *base, struct api_call *call)
{
    struct cli_run r = {.base = base, .call = call};
    if (api_call_start(call, on_done, &r) != 0) {
        call->status = HTTP_INTERNAL;
        call->error_text = "out of memory";
        return;
    }
    while (!r.done)
        event_base_loop(base, EVLOOP_ONCE);
}

static int64_t jint(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static bool jbool(const cJSON *o, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static const char *body_text(struct api_call *call)
{
    evbuffer_add(call->body, "", 1);
    return (const char *)evbuffer_pullup(call->body, -1);
}

/* ---- tables ---- */

static void print_topics(const cJSON *doc)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(doc, "topics"))
    {
        if (cJSON_IsString(t))
            printf("%s\n", t->valuestring);
        else if (t->string != NULL) /* inactive: topic → channels */
            printf("%s\n", t->string);
    }
}

static void print_channels(const cJSON *doc)
{
    printf("%-32s %10s %10s %10s %10s %10s %12s %8s %s\n", "CHANNEL", "DEPTH", "IN_FLIGHT",
           "DEFERRED", "REQUEUED", "TIMED_OUT", "MESSAGES", "CLIENTS", "PAUSED");
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(doc, "channels"))
    {
        printf("%-32s %10lld %10lld %10lld %10lld %10lld %12lld %8lld %s\n",
               jstr(c, "channel_name"), (long long)jint(c, "depth"),
               (long long)jint(c, "in_flight_count"), (long long)jint(c, "deferred_count"),
               (long long)jint(c, "requeue_count"), (long long)jint(c, "timeout_count"),
               (long long)jint(c, "message_count"), (long long)jint(c, "client_count"),
               jbool(c, "paused") ? "yes" : "no");
    }
}

static void print_nodes(const cJSON *doc)
{
    printf("%-24s %-24s %6s %6s %-10s %s\n", "HOSTNAME", "BROADCAST_ADDRESS", "TCP", "HTTP",
           "VERSION", "TOPICS");
    const cJSON *n;
    cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(doc, "nodes"))
    {
        printf("%-24s %-24s %6lld %6lld %-10s ", jstr(n, "hostname"), jstr(n, "broadcast_address"),
               (long long)jint(n, "tcp_port"), (long long)jint(n, "http_port"), jstr(n, "version"));
        if (jbool(n, "out_of_date"))
            printf("(out of date) ");
        int k = 0;
        const cJSON *t;
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(n, "topics"))
        {
            printf("%s%s%s", k++ > 0 ? "," : "", jstr(t, "topic"),
                   jbool(t, "tombstoned") ? "(tombstoned)" : "");
        }
        printf("\n");
    }
}

/* message_count of a node in an earlier answer (for msgs/s), -1 if unknown. */
static int64_t earlier_count(const cJSON *before, const char *node)
{
    const cJSON *n;
    cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(before, "nodes"))
    {
        if (strcmp(jstr(n, "node"), node) == 0)
            return jint(n, "message_count");
    }
    if (strcmp(jstr(before, "node"), node) == 0)
        return jint(before, "message_count");
    return -1;
}

static void format_rate(char *buf, size_t len, const cJSON *before, const cJSON *row,
                        double seconds)
{
    int64_t then = before != NULL ? earlier_count(before, jstr(row, "node")) : -1;
    if (then < 0 || seconds <= 0) {
        snprintf(buf, len, "-");
        return;
    }
    int64_t d = jint(row, "message_count") - then;
    snprintf(buf, len, "%.2f", d > 0 ? (double)d / seconds : 0.0);
}

static int64_t topic_clients(const cJSON *t)
{
    int64_t n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(t, "channels"))
    {
        n += jint(c, "client_count");
    }
    return n;
}

static void print_stats_row(const cJSON *row, const cJSON *before, double seconds, bool channel,
                            const char *label)
{
    char rate[32];
    format_rate(rate, sizeof(rate), before, row, seconds);
    if (channel)
        printf("%-24s %10lld %10lld %10lld %10lld %10lld %10lld %10lld %12lld %10s %8lld\n", label,
               (long long)jint(row, "depth"), (long long)jint(row, "memory_depth"),
               (long long)jint(row, "backend_depth"), (long long)jint(row, "in_flight_count"),
               (long long)jint(row, "deferred_count"), (long long)jint(row, "requeue_count"),
               (long long)jint(row, "timeout_count"), (long long)jint(row, "message_count"), rate,
               (long long)jint(row, "client_count"));
    else
        printf("%-24s %10lld %10lld %10lld %12lld %10s %8lld %8lld\n", label,
               (long long)jint(row, "depth"), (long long)jint(row, "memory_depth"),
               (long long)jint(row, "backend_depth"), (long long)jint(row, "message_count"), rate,
               (long long)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(row, "channels")),
               (long long)topic_clients(row));
}

static void print_stats(const cJSON *doc, const cJSON *before, double seconds, bool channel)
{
    if (channel)
        printf("%-24s %10s %10s %10s %10s %10s %10s %10s %12s %10s %8s\n", "NODE", "DEPTH",
               "MEMORY", "BACKEND", "IN_FLIGHT", "DEFERRED", "REQUEUED", "TIMED_OUT", "MESSAGES",
               "MSGS/S", "CLIENTS");
    else
        printf("%-24s %10s %10s %10s %12s %10s %8s %8s\n", "NODE", "DEPTH", "MEMORY", "BACKEND",
               "MESSAGES", "MSGS/S", "CHANNELS", "CLIENTS");
    const cJSON *n;
    cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(doc, "nodes"))
    {
        print_stats_row(n, before, seconds, channel, jstr(n, "node"));
    }
    if (channel) {
        print_stats_row(doc, before, seconds, channel, "TOTAL");
        return;
    }
    /* topic total: the aggregate's channels are per channel, clients counted from them */
    print_stats_row(doc, before, seconds, channel, "TOTAL");
}

/* ---- main ---- */

static int exit_for(struct api_call *call, bool json)
{
    if (call->status != HTTP_OK) {
        fprintf(stderr, "%s: %s\n", PROGRAM, call->error_text);
        return CLI_EXIT_FAILURE;
    }
    cJSON *doc = cJSON_Parse(body_text(call));
    const char *msg = jstr(doc, "message");
    int rc = CLI_EXIT_OK;
    if (msg[0] != '\0') {
        fprintf(stderr, "%s\n", msg);
        rc = CLI_EXIT_PARTIAL;
    }
    (void)json;
    cJSON_Delete(doc);
    return rc;
}

static int usage_error(const char *text)
{
    fprintf(stderr, "%s: %s\n", PROGRAM, text);
    fprintf(stderr, "run '%s --help' for usage\n", PROGRAM);
    return CLI_EXIT_USAGE;
}

static struct api_call *make_call(struct clusterinfo *ci, enum api_op op, const char *topic,
                                  const char *channel, const char *node, const char *action)
{
    struct api_call *call = api_call_new(ci, op);
    if (call == NULL)
        return NULL;
    call->topic = topic != NULL ? ci_strdup(call->a, topic) : NULL;
    call->channel = channel != NULL ? ci_strdup(call->a, channel) : NULL;
    call->node = node != NULL ? ci_strdup(call->a, node) : NULL;
    call->action = action != NULL ? ci_strdup(call->a, action) : NULL;
    return call;
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / NS_PER_SEC), (long)(ns % NS_PER_SEC)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The API request a command line stands for. Strings point into the parsed options. */
struct cli_request {
    const struct cli_cmd *cmd;
    enum api_op op;
    const char *topic, *channel, *node, *action;
    bool stats; /* the "stats" command: rates need a second sample */
};

/* Parses the configuration and the command line into o and checks the command and its arguments.
   Returns 0, or the exit code after printing the usage error. */
static int parse_command_line(struct cli_opts *o, int argc, char **argv, struct cli_request *req)
{
    char err[CLI_ERR_LEN] = "";
    /* defaults and the config file first, then the flags in any position */
    if (parse_args(o, argc, argv, false, err, sizeof(err)) != 0)
        return usage_error(err);
    char config_flag[CLI_CONFIG_FLAG_LEN];
    snprintf(config_flag, sizeof(config_flag), "--config=%s", o->config != NULL ? o->config : "");
    char *base_args[] = {argv[0], config_flag, NULL};
    o->npos = 0;
    if (nsq_options_parse(o->table, o->n, PROGRAM, o->config != NULL ? 2 : 1, base_args, err,
                          sizeof(err)) != 0 ||
        parse_args(o, argc, argv, true, err, sizeof(err)) != 0 ||
        nsqadmin_check_sources(&o->admin, err, sizeof(err)) != 0)
        return usage_error(err);
    nsq_log_init(o->admin.log_prefix, NSQ_LOG_FATAL);
    const struct cli_cmd *cmd = find_command(o->pos[0]);
    size_t nargs = o->npos - 1;
    if (cmd == NULL) {
        snprintf(err, sizeof(err), "unknown command \"%s\"", o->pos[0]);
        return usage_error(err);
    }
    if (nargs < (size_t)cmd->min_args || nargs > (size_t)cmd->max_args) {
        snprintf(err, sizeof(err), "usage: %s %s %s", PROGRAM, o->pos[0], cmd->args_help);
        return usage_error(err);
    }
    const char *arg1 = nargs > 0 ? o->pos[1] : NULL;
    const char *arg2 = nargs > 1 ? o->pos[2] : NULL;
    if (arg1 != NULL && strcmp(cmd->name, "delete") != 0 &&
        !nsq_topic_name_valid(arg1, strlen(arg1)))
        return usage_error("INVALID_TOPIC");
    if (arg2 != NULL && strcmp(cmd->name, "tombstone") != 0 &&
        !nsq_channel_name_valid(arg2, strlen(arg2)))
        return usage_error("INVALID_CHANNEL");
    *req = (struct cli_request){.cmd = cmd, .topic = arg1, .channel = arg2};
    return 0;
}

/* Chooses the API operation for req->cmd (topic and channel already set from the arguments). */
static void choose_operation(struct cli_request *req)
{
    const char *name = req->cmd->name;
    req->stats = strcmp(name, "stats") == 0;
    if (strcmp(name, "topics") == 0) {
        req->op = API_TOPICS;
    } else if (strcmp(name, "channels") == 0) {
        req->op = API_TOPIC;
    } else if (strcmp(name, "nodes") == 0) {
        req->op = API_NODES;
    } else if (req->stats) {
        req->op = req->channel != NULL ? API_CHANNEL : API_TOPIC;
    } else if (strcmp(name, "delete") == 0) {
        req->op = req->channel != NULL ? API_CHANNEL_DELETE : API_TOPIC_DELETE;
    } else if (strcmp(name, "create") == 0) {
        req->op = API_CREATE;
    } else if (strcmp(name, "tombstone") == 0) {
        req->op = API_TOMBSTONE;
        req->node = req->channel;
        req->channel = NULL;
    } else {
        req->op = req->channel != NULL ? API_CHANNEL_ACTION : API_TOPIC_ACTION;
        req->action = name;
    }
}

/* Prints a successful answer for a person; before (or NULL) is the earlier sample that stats
   rates are computed against, seconds before call. Returns the exit code, starting from rc. */
static int print_answer(const struct cli_request *req, struct api_call *call,
                        struct api_call *before, double seconds, int rc)
{
    cJSON *doc = cJSON_Parse(body_text(call));
    cJSON *bdoc =
            before != NULL && before->status == HTTP_OK ? cJSON_Parse(body_text(before)) : NULL;
    switch (req->op) {
    case API_TOPICS:
        print_topics(doc);
        break;
    case API_NODES:
        print_nodes(doc);
        break;
    case API_TOPIC:
        if (req->stats)
            print_stats(doc, bdoc, seconds, false);
        else
            print_channels(doc);
        break;
    case API_CHANNEL:
        if (cJSON_GetObjectItemCaseSensitive(doc, "channel_name") == NULL) {
            fprintf(stderr, "%s: CHANNEL_NOT_FOUND\n", PROGRAM);
            rc = CLI_EXIT_FAILURE;
        } else {
            print_stats(doc, bdoc, seconds, true);
        }
        break;
    default:
        if (rc == CLI_EXIT_OK)
            printf("OK\n");
        break;
    }
    cJSON_Delete(doc);
    cJSON_Delete(bdoc);
    return rc;
}

/* Runs req against the cluster on a private event loop and prints the answer. Returns the exit
   code. */
static int run_request(struct cli_opts *o, const struct cli_request *req)
{
    int rc = CLI_EXIT_FAILURE;
    struct event_base *base = event_base_new();
    struct nsq_http_client_options co;
    nsqadmin_client_options(&o->admin, &co);
    struct nsq_http_client *http = base != NULL ? nsq_http_client_new(base, &co) : NULL;
    struct clusterinfo_sources src;
    nsqadmin_cluster_sources(&o->admin, &src);
    struct clusterinfo *ci = http != NULL ? clusterinfo_new(base, http, &src) : NULL;
    struct api_call *before = NULL, *call = NULL;
    double seconds = 0;
    if (ci == NULL) {
        fprintf(stderr, "%s: out of memory\n", PROGRAM);
        goto done;
    }
    if (req->stats && !o->json && o->rate_interval > 0) {
        before = make_call(ci, req->op, req->topic, req->channel, req->node, req->action);
        if (before == NULL)
            goto done;
        run_call(base, before);
        sleep_ns(o->rate_interval);
        seconds = (double)o->rate_interval / NS_PER_SEC_D;
    }
    call = make_call(ci, req->op, req->topic, req->channel, req->node, req->action);
    if (call == NULL)
        goto done;
    run_call(base, call);
    rc = exit_for(call, o->json);
    if (call->status != HTTP_OK)
        goto done;
    if (o->json)
        printf("%s\n", body_text(call));
    else
        rc = print_answer(req, call, before, seconds, rc);
done:
    api_call_free(before);
    api_call_free(call);
    clusterinfo_close(ci);
    nsq_http_client_free(http);
    clusterinfo_free(ci);
    if (base != NULL)
        event_base_free(base);
    return rc;
}

int cli_main(int argc, char **argv)
{
    struct cli_opts *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return CLI_EXIT_FAILURE;
    cli_table(o);
    struct cli_request req;
    int rc = parse_command_line(o, argc, argv, &req);
    if (rc == 0) {
        choose_operation(&req);
        rc = run_request(o, &req);
    }
    nsq_options_free(o->table, o->n);
    free(o);
    return rc;
}
