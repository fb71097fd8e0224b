# Install rules and the Debian package (cpack -G DEB).
#
# Layout (GNUInstallDirs, relative to the install prefix):
#   bin/                      nsqd, nsqlookupd, nsqadmin (rules next to their targets), the
#                             utilities and nsq_bench
#   lib/                      libnsq.a and libnsqcommon.a (the client library and what it links)
#   lib/pkgconfig/nsq.pc      cflags/libs for programs using the client library
#   include/nsq.h             the client library's public header
#   lib/systemd/system/       service units, lib/sysusers.d/nsq.conf, etc/nsq/*.conf (systemd/)
#   share/doc/nsq/            README.md and docs/*.md
# nsqadmin's web UI is compiled into the binary: nothing else to install for it.

# Installing (and cpack) packages what is built and never starts a build of the whole tree (test
# suites included): build first (cmake --build), then install or package.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

# ---- programs --------------------------------------------------------------------------------
set(NSQ_INSTALLED_TOOLS to_nsq nsq_tail nsq_to_nsq nsq_stat nsq_to_file nsq_to_http nsq_bench)
foreach(tool ${NSQ_INSTALLED_TOOLS})
    if(TARGET ${tool})
        install(TARGETS ${tool} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
    endif()
endforeach()

# ---- client library ----------------------------------------------------------------------------
# libnsq is static and calls into libnsqcommon, so both archives are installed; nsq.pc names the
# shared libraries they need through Requires.
install(TARGETS nsq nsqcommon ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${CMAKE_SOURCE_DIR}/clients/libnsq/nsq.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(NSQ_PC_REQUIRES
    "libevent libevent_openssl libevent_pthreads openssl libcjson libcurl snappy zlib")
if(systemd_FOUND)
    string(APPEND NSQ_PC_REQUIRES " libsystemd")
endif()
# The prefix is written at install time (the one given to cmake --install, or /usr in the package).
set(NSQ_PC_PREFIX "@NSQ_PC_PREFIX@")
configure_file(${CMAKE_CURRENT_LIST_DIR}/nsq.pc.in ${CMAKE_BINARY_DIR}/nsq.pc.in @ONLY)
install(CODE "
    string(REGEX REPLACE \"/+$\" \"\" NSQ_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
    configure_file(\"${CMAKE_BINARY_DIR}/nsq.pc.in\" \"${CMAKE_BINARY_DIR}/nsq.pc\" @ONLY)
")
install(FILES ${CMAKE_BINARY_DIR}/nsq.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# ---- documentation -----------------------------------------------------------------------------
file(GLOB NSQ_DOC_FILES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/docs/*.md)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${NSQ_DOC_FILES} DESTINATION ${CMAKE_INSTALL_DOCDIR})

# ---- Debian package ----------------------------------------------------------------------------
set(CPACK_PACKAGE_NAME nsq)
set(CPACK_PACKAGE_VENDOR "nsq-c")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "realtime distributed messaging platform (nsqd, nsqlookupd, nsqadmin)")
set(CPACK_PACKAGE_DESCRIPTION
    "A C implementation of the NSQ messaging suite, wire- and disk-compatible with NSQ v1.3.0: the
messaging daemon nsqd, the discovery daemon nsqlookupd, the nsqadmin web UI, the utilities
(nsq_tail, to_nsq, nsq_to_file, nsq_to_http, nsq_to_nsq, nsq_stat), nsq_bench and the C client
library with its header and pkg-config file. Service units run the daemons as the nsq user.")
set(CPACK_PACKAGE_CONTACT "nsq-c maintainers <nsq-c@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
# Absolute destinations (/etc/nsq) need the install to go through DESTDIR.
set(CPACK_SET_DESTDIR ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://nsq.io")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Release binaries are built with -g; the package ships them stripped.
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "curl")
# Maintainer scripts: postinst creates the nsq user and /var/lib/nsqd; prerm stops the services.
# conffiles keeps local edits of /etc/nsq/*.conf across upgrades.
set(NSQ_DEB_DIR ${CMAKE_BINARY_DIR}/debian)
file(MAKE_DIRECTORY ${NSQ_DEB_DIR})
foreach(script postinst prerm postrm)
    file(COPY ${CMAKE_SOURCE_DIR}/systemd/debian/${script} DESTINATION ${NSQ_DEB_DIR}
         FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                          WORLD_READ WORLD_EXECUTE)
endforeach()
file(WRITE ${NSQ_DEB_DIR}/conffiles
    "/etc/nsq/nsqd.conf\n/etc/nsq/nsqlookupd.conf\n/etc/nsq/nsqadmin.conf\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${NSQ_DEB_DIR}/postinst ${NSQ_DEB_DIR}/prerm ${NSQ_DEB_DIR}/postrm ${NSQ_DEB_DIR}/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_GENERATOR DEB)
set(CPACK_SOURCE_GENERATOR TGZ)
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build[^/]*/")
include(CPack)
