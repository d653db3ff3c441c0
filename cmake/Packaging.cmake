# The Debian package, fwgate_VERSION_ARCH.deb: CPack's DEB generator over the install rules of
# apps/fwgate, src/client and packaging, run in a build directory that is already built
# (scripts/package.sh BUILD_DIR). CPack installs with CMAKE_INSTALL_PREFIX=/usr into a staging
# directory; nothing is compiled again.
#
# Maintainer scripts, conffiles, copyright and changelog: packaging/debian/.

set(FWGATE_DEBIAN_DIR ${PROJECT_SOURCE_DIR}/packaging/debian)

# The changelog's latest entry is the package's version: a new version needs an entry.
file(STRINGS ${FWGATE_DEBIAN_DIR}/changelog fwgate_changelog_head LIMIT_COUNT 1)
if(NOT fwgate_changelog_head MATCHES "^fwgate \\(${PROJECT_VERSION}\\) ")
  message(FATAL_ERROR "packaging/debian/changelog starts with '${fwgate_changelog_head}': "
                      "add an entry for fwgate ${PROJECT_VERSION}")
endif()

set(FWGATE_PACKAGE_MAINTAINER
    "fwgate developers <maintainers@users.noreply.r-seed-3d92d852.example>"
    CACHE STRING "Maintainer field of the Debian package")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME fwgate)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_CONTACT "${FWGATE_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "firewall gateway: SOCKS 4/4a/5 server and firewall client")
set(CPACK_PACKAGE_DESCRIPTION
    "fwgate decides in one place which internal host or user may reach what
outside, and logs every decision as one JSON line per session.
.
On the gateway, the fwgate-gateway service serves SOCKS 4, 4a and 5
(CONNECT, BIND, UDP ASSOCIATE, argon2id-hashed passwords) and the
firewall-client control channel, with ordered allow and deny rules and
protocol definitions for FTP and other protocols with secondary
connections; static packet filters go into nftables. fwgate monitor
captures traffic and proposes the definitions a program needs.
.
On internal hosts, libfwgate-client.so (fwgate run, or /etc/ld.so.preload)
makes unmodified programs reach remote destinations through the gateway.")
# fwgate_0.1.0_amd64.deb
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
# Depends: the shared libraries dpkg-shlibdeps finds, and adduser for the maintainer scripts
# (deb-systemd-helper and deb-systemd-invoke come with init-system-helpers, which is essential).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "logrotate")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${FWGATE_DEBIAN_DIR}/postinst ${FWGATE_DEBIAN_DIR}/prerm ${FWGATE_DEBIAN_DIR}/postrm
    ${FWGATE_DEBIAN_DIR}/conffiles)
# Maintainer scripts 0755, conffiles 0644, whatever the checkout's modes.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
# Stripped as dh_strip strips (CPACK_STRIP_FILES would leave .comment and .note).
set(CPACK_FWGATE_STRIP "${CMAKE_STRIP}")
set(CPACK_PRE_BUILD_SCRIPTS ${FWGATE_DEBIAN_DIR}/strip.cmake)
set(CPACK_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
    OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)

include(CPack)
