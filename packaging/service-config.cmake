# cmake -DFWGATE=path/to/fwgate -DOUTPUT=gateway.toml -P service-config.cmake
#
# The /etc/fwgate/gateway.toml that the package installs: the built executable's embedded default
# (`fwgate config default`, so the two never drift apart) with the two settings a service needs,
#   [gateway] user = "fwgate"                         drop root after binding (the package's user)
#   [log] sessions = "/var/log/fwgate/sessions.log"   the session log in a file logrotate rotates
# and a note saying so after the default's own header comment. Fails, rather than install
# something else, when the default no longer has the shape these edits expect.
cmake_minimum_required(VERSION 3.25)

execute_process(COMMAND "${FWGATE}" config default OUTPUT_VARIABLE text RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR text STREQUAL "")
  message(FATAL_ERROR "service-config: `${FWGATE} config default` failed (${rc})")
endif()

function(expect_once pattern what)
  string(REGEX MATCHALL "${pattern}" found "${text}")
  list(LENGTH found n)
  if(NOT n EQUAL 1)
    message(FATAL_ERROR "service-config: the embedded default has ${n} ${what}, expected one; "
                        "update packaging/service-config.cmake")
  endif()
endfunction()

expect_once("\n\\[log\\]\n" "[log] sections")
expect_once("\nsessions = \"-\"\n" "'sessions = \"-\"' lines")
string(FIND "${text}" "\n[gateway]" has_gateway)
if(NOT has_gateway EQUAL -1)
  message(FATAL_ERROR "service-config: the embedded default has a [gateway] section now; "
                      "update packaging/service-config.cmake")
endif()

# The default's header is its first lines starting with '#'; the body starts at the first blank
# line after them.
string(FIND "${text}" "\n\n" body_at)
if(body_at EQUAL -1)
  message(FATAL_ERROR "service-config: no blank line after the default's header comment")
endif()
string(SUBSTRING "${text}" 0 ${body_at} header)
if(NOT header MATCHES "^#")
  message(FATAL_ERROR "service-config: the embedded default no longer starts with a comment")
endif()
math(EXPR body_at "${body_at} + 2")
string(SUBSTRING "${text}" ${body_at} -1 body)

string(REPLACE "\nsessions = \"-\"\n" "\nsessions = \"/var/log/fwgate/sessions.log\"\n" body
               "${body}")

string(CONCAT out
  "${header}\n"
  "#\n"
  "# As the fwgate package installs it: that default with two changes for the fwgate-gateway\n"
  "# service, [gateway] user = \"fwgate\" (root only until the ports are bound) and [log] sessions\n"
  "# in /var/log/fwgate (rotated by /etc/logrotate.d/fwgate). Every key: man 5 fwgate.toml.\n"
  "# After an edit:\n"
  "#   fwgate config check /etc/fwgate/gateway.toml && systemctl reload fwgate-gateway\n"
  "\n"
  "[gateway]\n"
  "user = \"fwgate\"\n"
  "\n"
  "${body}")

file(WRITE "${OUTPUT}.tmp" "${out}")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
