/*
 * producer: the smallest useful libnsq publisher.
 *
 *   producer <nsqd host:port> <topic> <message>...
 *
 * Publishes each message synchronously (one PUB per argument) and then all of them again as one
 * MPUB, printing nsqd's error text if a publish fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nsq.h"

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s <nsqd host:port> <topic> <message>...\n", argv[0]);
        return 2;
    }
    struct nsq_config *cfg = nsq_config_new();
    nsq_config_set(cfg, "user_agent", "example-producer/" NSQ_LIB_VERSION);
    /* NULL base: the producer runs its own loop inside the synchronous calls. */
    struct nsq_producer *p = nsq_producer_new(NULL, argv[1], cfg);
    if (!p) {
        fprintf(stderr, "bad address %s\n", argv[1]);
        return 1;
    }
    int rc = 0;
    for (int i = 3; i < argc && rc == 0; i++)
        rc = nsq_producer_publish(p, argv[2], argv[i], strlen(argv[i]));
    if (rc == 0) {
        size_t n = (size_t)(argc - 3);
        const void **bodies = calloc(n, sizeof(*bodies));
        size_t *lens = calloc(n, sizeof(*lens));
        for (size_t i = 0; i < n; i++) {
            bodies[i] = argv[3 + i];
            lens[i] = strlen(argv[3 + i]);
        }
        rc = nsq_producer_multi_publish(p, argv[2], bodies, lens, n);
        free(bodies);
        free(lens);
    }
    if (rc < 0)
        fprintf(stderr, "publish failed: %s\n", nsq_producer_last_error(p));
    nsq_producer_free(p);
    nsq_config_free(cfg);
    return rc < 0 ? 1 : 0;
}
