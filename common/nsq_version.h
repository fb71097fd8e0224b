/*
 * nsq_version: the version every program reports. It is upstream's protocol version, since clients
 * and peers compare it (nsqadmin flags nodes older than the newest it sees).
 */
#ifndef NSQ_VERSION_H
#define NSQ_VERSION_H

#define NSQ_VERSION "1.3.0"

/* "<program> v1.3.0 (built w/<compiler>)" as printed by --version; static storage. */
const char *nsq_version_string(const char *program);

#endif
