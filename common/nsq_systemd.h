/*
 * nsq_systemd: readiness and stopping notifications for the service manager (Type=notify units).
 * Built on libsystemd's sd_notify when the build found libsystemd; otherwise every call is a no-op.
 * Outside systemd (no NOTIFY_SOCKET in the environment) the calls do nothing either.
 */
#ifndef NSQ_SYSTEMD_H
#define NSQ_SYSTEMD_H

/* Call once every listener is open: dependants may connect from now on. */
void nsq_systemd_notify_ready(void);

/* Call when a graceful shutdown starts (nsqd may take a while to persist its queues). */
void nsq_systemd_notify_stopping(void);

#endif
