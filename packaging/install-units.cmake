# Run by `cmake --install` (and by CPack, which installs with CMAKE_INSTALL_PREFIX=/usr): the
# systemd units, made from their templates for the prefix being installed to, so that ExecStart=
# names the fwgate that this installation puts in place.
#   prefix /usr            units in /lib/systemd/system (Debian 12's place for packaged units)
#   any other prefix       units in PREFIX/lib/systemd/system (/usr/local/lib/systemd/system is
#                          on systemd's search path; other prefixes need a symlink or a copy)
# Set by the install(CODE) before this script: FWGATE_UNIT_TEMPLATES, FWGATE_UNIT_STAGE.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(fwgate_unitdir /lib/systemd/system)
else()
  set(fwgate_unitdir "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
endif()
set(FWGATE_BINDIR "${CMAKE_INSTALL_PREFIX}/bin")
set(FWGATE_DOCDIR "${CMAKE_INSTALL_PREFIX}/share/doc/fwgate")

set(fwgate_units "")
foreach(template IN LISTS FWGATE_UNIT_TEMPLATES)
  get_filename_component(name "${template}" NAME)
  string(REGEX REPLACE "\\.in$" "" name "${name}")
  configure_file("${template}" "${FWGATE_UNIT_STAGE}/${name}" @ONLY)
  list(APPEND fwgate_units "${FWGATE_UNIT_STAGE}/${name}")
endforeach()

file(INSTALL DESTINATION "${fwgate_unitdir}" TYPE FILE
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES ${fwgate_units})
