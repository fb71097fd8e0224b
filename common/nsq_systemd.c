/* nsq_systemd: thin wrapper over sd_notify, compiled to no-ops without libsystemd. */
#include "nsq_systemd.h"

#ifdef NSQ_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

void nsq_systemd_notify_ready(void)
{
    sd_notify(0, "READY=1");
}

void nsq_systemd_notify_stopping(void)
{
    sd_notify(0, "STOPPING=1");
}
#else
void nsq_systemd_notify_ready(void)
{
}

void nsq_systemd_notify_stopping(void)
{
}
#endif
