# Run by CPack (CPACK_PRE_BUILD_SCRIPTS) on its staging directory, before the .deb is made: strips
# the ELF files as Debian's dh_strip does, symbols and also the .comment and .note sections;
# shared objects keep what dynamic linking needs (--strip-unneeded).
file(GLOB_RECURSE fwgate_files LIST_DIRECTORIES false
     "${CPACK_TEMPORARY_DIRECTORY}/usr/bin/*" "${CPACK_TEMPORARY_DIRECTORY}/usr/lib/*")
foreach(file IN LISTS fwgate_files)
  if(IS_SYMLINK "${file}")
    continue()
  endif()
  file(READ "${file}" magic LIMIT 4 HEX)
  if(NOT magic STREQUAL "7f454c46")
    continue()
  endif()
  set(how --remove-section=.comment --remove-section=.note)
  if(file MATCHES "\\.so(\\.[0-9]+)*$")
    list(APPEND how --strip-unneeded)
  endif()
  execute_process(COMMAND "${CPACK_FWGATE_STRIP}" ${how} "${file}" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "strip ${file} failed (${rc})")
  endif()
endforeach()
