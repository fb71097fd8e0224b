# Finds every external library through pkg-config. A missing one stops the configure step with the
# name of the Debian package that provides it.
find_package(PkgConfig)
if(NOT PKG_CONFIG_FOUND)
    message(FATAL_ERROR "pkg-config not found: install it with 'apt-get install pkg-config'")
endif()

# nsq_require(<target name> <pkg-config module> <Debian package>)
function(nsq_require name module package)
    pkg_check_modules(${name} QUIET IMPORTED_TARGET GLOBAL ${module})
    if(NOT ${name}_FOUND)
        message(FATAL_ERROR
            "missing dependency '${module}': install it with 'apt-get install ${package}'")
    endif()
    add_library(dep::${name} ALIAS PkgConfig::${name})
endfunction()

nsq_require(event libevent libevent-dev)
nsq_require(event_openssl libevent_openssl libevent-dev)
nsq_require(event_pthreads libevent_pthreads libevent-dev)
nsq_require(openssl openssl libssl-dev)
nsq_require(cjson libcjson libcjson-dev)
nsq_require(curl libcurl libcurl4-openssl-dev)
nsq_require(snappy snappy libsnappy-dev)
nsq_require(zlib zlib zlib1g-dev)
if(NSQ_BUILD_TESTS)
    nsq_require(check check check)
endif()

find_package(Threads REQUIRED)

# Optional: readiness notification to systemd (Type=notify units) through libsystemd-dev.
option(NSQ_WITH_SYSTEMD "Notify systemd of readiness when libsystemd is available" ON)
if(NSQ_WITH_SYSTEMD)
    pkg_check_modules(systemd QUIET IMPORTED_TARGET GLOBAL libsystemd)
endif()
