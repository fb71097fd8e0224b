# Install-time step (run by cmake --install through systemd/CMakeLists.txt): configures the service
# units for the prefix being installed to and installs them, the example configuration files and
# the sysusers.d entry.
#
# Paths follow GNUInstallDirs' rule for system prefixes: installing to /usr (a distribution
# package) puts the configuration in /etc/nsq; any other prefix P (/usr/local, a staging root) puts
# it in P/etc/nsq. file(INSTALL) prepends $DESTDIR to these absolute paths, as cpack requires.

set(prefix "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/+$" "" prefix "${prefix}")
if(prefix STREQUAL "" OR prefix STREQUAL "/usr")
    set(NSQ_CONFDIR "/etc/nsq")
else()
    set(NSQ_CONFDIR "${prefix}/etc/nsq")
endif()
set(NSQ_BINDIR "${prefix}/${NSQ_INSTALL_BINDIR}")
set(NSQ_DOCDIR "${prefix}/${NSQ_INSTALL_DOCDIR}")

set(staged "${NSQ_SYSTEMD_BINARY_DIR}/installed")
foreach(unit nsqd nsqlookupd nsqadmin)
    configure_file("${NSQ_SYSTEMD_SOURCE_DIR}/${unit}.service.in" "${staged}/${unit}.service" @ONLY)
    file(INSTALL DESTINATION "${prefix}/${NSQ_SYSTEMD_UNIT_DIR}" TYPE FILE
         FILES "${staged}/${unit}.service")
    file(INSTALL DESTINATION "${NSQ_CONFDIR}" TYPE FILE
         FILES "${NSQ_SYSTEMD_SOURCE_DIR}/${unit}.conf")
endforeach()
file(INSTALL DESTINATION "${prefix}/${NSQ_SYSUSERS_DIR}" TYPE FILE
     FILES "${NSQ_SYSTEMD_SOURCE_DIR}/nsq.sysusers.conf" RENAME nsq.conf)
