/*
 * nsq_options: Go-flag-compatible command lines and TOML config files from one declarative table.
 *
 * Every program describes its options as an array of struct nsq_opt. nsq_options_parse applies,
 * for each option, the first of: the value given on the command line, the config-file key, the
 * default (flags.md §0-§1). Command-line syntax is Go's flag package: -name or --name, "=value" or
 * a separate value, bools only as "-name" or "-name=<bool>", parsing stops at the first non-flag
 * argument or after "--". Errors use Go's wording.
 *
 * Targets must be zero-initialised before the first parse (a second parse frees what the first
 * stored). Ownership: the targets are the caller's; string and list targets receive malloc'd values
 * that nsq_options_free releases. Not thread-safe: parse once at startup.
 */
#ifndef NSQ_OPTIONS_H
#define NSQ_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct evbuffer;
struct nsq_toml_value;

enum nsq_opt_type {
    NSQ_OPT_BOOL,        /* bool */
    NSQ_OPT_INT,         /* int */
    NSQ_OPT_INT64,       /* int64_t */
    NSQ_OPT_DURATION,    /* int64_t nanoseconds */
    NSQ_OPT_STRING,      /* char *, malloc'd ("" rather than NULL once parsed) */
    NSQ_OPT_STRING_LIST, /* struct nsq_strlist; repeatable, one value per occurrence */
    NSQ_OPT_FLOAT_LIST,  /* struct nsq_floatlist; repeatable, values comma-split, kept sorted
                            descending when given as flags (upstream's FloatArray) */
    NSQ_OPT_CUSTOM,      /* parse/render callbacks */
};

struct nsq_strlist {
    char **items;
    size_t len;
};
struct nsq_floatlist {
    double *items;
    size_t len;
};

struct nsq_opt {
    const char *flag; /* "mem-queue-size" */
    const char *cfg; /* config-file key; NULL → flag with '-'→'_'; "" → not settable from a file */
    enum nsq_opt_type type;
    void *target;
    const char *defval; /* default as text (parsed like a flag value); NULL → zero/empty */
    const char *help;   /* a `word` in back quotes names the value in the usage, as Go does */
    /* NSQ_OPT_CUSTOM only: */
    int (*parse)(const char *text, void *target);            /* 0 / -EINVAL */
    int (*render)(const void *target, struct evbuffer *out); /* JSON value, for GET /config */
    bool bool_like;                /* "--flag" alone means "true" (e.g. tls-required) */
    void (*release)(void *target); /* optional: frees what parse stored */
    const char *usage_default;     /* optional: default as shown in the usage, e.g. "INFO" */
    const char *parse_error;       /* optional: Go's error text for a rejected custom value; a
                                      "%s" in it is replaced by the value */
};

/* Table entry for the common types (designated initializers keep -Wextra quiet). */
#define NSQ_OPT_ENTRY(f, c, t, tgt, d, h)                                                          \
    {                                                                                              \
        .flag = (f), .cfg = (c), .type = (t), .target = (tgt), .defval = (d), .help = (h)          \
    }

/* The --log-level option shared by the daemons: target is an enum nsq_log_level, rendered as its
   integer for GET /config/log_level. */
int nsq_opt_log_level_parse(const char *text, void *target);
int nsq_opt_log_level_render(const void *target, struct evbuffer *out);
#define NSQ_OPT_LOG_LEVEL_ENTRY(tgt)                                                               \
    {                                                                                              \
        .flag = "log-level", .type = NSQ_OPT_CUSTOM, .target = (tgt), .defval = "info",            \
        .help = "set log verbosity: debug, info, warn, error, or fatal",                           \
        .parse = nsq_opt_log_level_parse, .render = nsq_opt_log_level_render,                      \
        .usage_default = "INFO", .parse_error = "invalid log-level '%s'"                           \
    }

/* Return values of nsq_options_parse. */
#define NSQ_OPTIONS_OK           0
#define NSQ_OPTIONS_EXIT         1  /* --help or --version handled: exit 0 */
#define NSQ_OPTIONS_FLAG_ERROR   -1 /* print err, then nsq_options_usage, exit 2 */
#define NSQ_OPTIONS_CONFIG_ERROR -2 /* fatal: log err, exit 1 */

/* Applies defaults, then the --config file (if given), then the flags given on the command line
   (argv[0] is the program path and is skipped). Handles --help/-h (usage to stderr, returns 1),
   --version (prints nsq_version_string(program) to stdout, returns 1) and --config.
   Returns 0 ok, 1 exit-0 requested, -1 flag error (err holds Go's message, e.g.
   "flag provided but not defined: -foo" or `invalid value "x" for flag -name: parse error`;
   the caller prints it and the usage and exits 2), or -2 config-file error (err holds
   "failed to load config file <f> - <err>" or "failed parsing <key> <value>"). */
int nsq_options_parse(const struct nsq_opt *table, size_t n, const char *program, int argc,
                      char **argv, char *err, size_t errlen);

/* "Usage of <program>:" and Go's flag.PrintDefaults listing (the table plus -config and -version),
   sorted by flag name. */
void nsq_options_usage(const struct nsq_opt *table, size_t n, const char *program, FILE *out);

/* Frees string/list targets (and custom ones with a release callback); leaves them zeroed. */
void nsq_options_free(const struct nsq_opt *table, size_t n);

/* The option whose config-file name is cfg_name, or NULL. */
const struct nsq_opt *nsq_options_find_cfg(const struct nsq_opt *table, size_t n,
                                           const char *cfg_name);
/* Config-file name of opt ("" if none). Returns 0 or -ENAMETOOLONG. */
int nsq_options_cfg_name(const struct nsq_opt *opt, char *buf, size_t len);

/* Sets opt from text as a command-line value would (lists append). Returns 0, -EINVAL, -ERANGE. */
int nsq_options_set(const struct nsq_opt *opt, const char *text);

/* Current value for GET /config: strings raw, numbers/bools JSON, durations as integer ns, lists
   as JSON arrays (empty → null), custom through render. Returns 0 or -ENOMEM. */
int nsq_options_render(const struct nsq_opt *opt, struct evbuffer *out);

/* Go's time.ParseDuration. Returns 0 or -EINVAL (syntax, unknown unit, missing unit) / -ERANGE. */
int nsq_parse_duration(const char *s, int64_t *ns);
/* Go's time.Duration.String(): "0s", "1.5s", "1m0s", "1h2m3.5s", "250ms", "1.2µs". Needs at most
   NSQ_DURATION_STRLEN bytes. */
#define NSQ_DURATION_STRLEN 40
void nsq_format_duration(int64_t ns, char *buf, size_t len);

/* Go's strconv.ParseBool: 1 t T TRUE true True / 0 f F FALSE false False. 0 or -EINVAL. */
int nsq_parse_bool(const char *s, bool *out);

/* Go's shortest round-trip float formatting as encoding/json writes it (appended to out). */
int nsq_options_format_float(double v, char *buf, size_t len);

#endif
