/*
 * api: nsqadmin's JSON API operations (http-api.md §5.2) independent of HTTP, so that the HTTP
 * server and the command-line subcommands run exactly the same code.
 *
 * An operation is described by a struct api_call (arguments in, result out). It runs
 * asynchronously on the clusterinfo's loop and calls call->done exactly once with either
 * status 200 and body = the complete JSON answer (including "message": "" or
 * "WARNING: <step errors joined by "; ">"), or an error status with error_text (e.g. 502
 * "UPSTREAM_ERROR: failed to query any nsqd: ...", 404 "NODE_NOT_FOUND"). Admin actions answer
 * {"message":...}. Argument validation (names, actions, authorization) is the caller's job.
 *
 * Ownership: api_call_new allocates the call with its arena; every string the call refers to
 * lives there. The done callback (or anyone after it) releases it with api_call_free.
 */
#ifndef NSQADMIN_API_H
#define NSQADMIN_API_H

#include <stdbool.h>

#include "clusterinfo.h"

struct evbuffer;
struct api_call;

typedef void (*api_done_fn)(struct api_call *call);

enum api_op {
    API_TOPICS,         /* GET /api/topics[?inactive=true] */
    API_TOPIC,          /* GET /api/topics/:topic */
    API_CHANNEL,        /* GET /api/topics/:topic/:channel */
    API_NODES,          /* GET /api/nodes */
    API_NODE,           /* GET /api/nodes/:node */
    API_COUNTER,        /* GET /api/counter */
    API_CREATE,         /* POST /api/topics {topic, channel?} */
    API_TOPIC_ACTION,   /* POST /api/topics/:topic {action} (pause/unpause/empty) */
    API_CHANNEL_ACTION, /* POST /api/topics/:topic/:channel {action} */
    API_TOPIC_DELETE,   /* DELETE /api/topics/:topic */
    API_CHANNEL_DELETE, /* DELETE /api/topics/:topic/:channel */
    API_TOMBSTONE,      /* DELETE /api/nodes/:node {topic} */
    API_CHANNEL_PEEK,   /* GET /api/topics/:topic/:channel/peek?n= (not upstream, docs/peek.md) */
};

struct api_call {
    struct clusterinfo *ci;
    struct ci_arena *a;
    enum api_op op;
    /* arguments (arena strings; NULL when absent) */
    const char *topic, *channel, *node, *action;
    bool inactive;
    int peek_n; /* API_CHANNEL_PEEK: messages asked of each nsqd (validated by the caller) */
    /* result */
    int status;             /* 200 on success */
    const char *error_text; /* when status != 200 */
    struct evbuffer *body;  /* JSON answer when status == 200 */
    struct ci_vec messages; /* warnings of the steps that partly failed (char *) */
    /* completion */
    api_done_fn done;
    void *arg;
    /* scratch of the running operation */
    struct ci_vec *producers;
    struct ci_vec lookupd_topics;
    struct ci_vec inactive_topics;
    char **lookupds; /* lookupds asked by a multi-step query (snapshot of the option) */
    size_t pending;  /* their number */
};

struct api_call *api_call_new(struct clusterinfo *ci, enum api_op op);
void api_call_free(struct api_call *call);

/* Starts the operation. Returns 0, or -ENOMEM (done is then not called). */
int api_call_start(struct api_call *call, api_done_fn done, void *arg);

/* "" or "WARNING: ..." for the call's messages (arena string). */
const char *api_call_message(struct api_call *call);

#endif
