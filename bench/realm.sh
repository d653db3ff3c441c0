# A Kerberos realm of a benchmark's own (sourced, not run; bench/auth-methods.sh,
# bench/control-channel.sh): its krb5.conf, kdc.conf and database in a directory of the run, a
# user with a password and service principals with a keytab, and krb5kdc in a network namespace.
# Exports KRB5_CONFIG, KRB5_KDC_PROFILE, KRB5RCACHEDIR and KRB5CCNAME for every later command.
#
#   realm_create DIR REALM KDC-ADDRESS      the files and the database
#   realm_user NAME PASSWORD                a principal with a password
#   realm_service PRINCIPAL KEYTAB          a principal with a random key, added to KEYTAB
#   realm_start NAMESPACE                   krb5kdc there, in the background; sets REALM_PID
#   realm_kinit NAMESPACE NAME PASSWORD     a ticket into KRB5CCNAME

realm_create() {
  local dir=$1 realm=$2 address=$3
  REALM_NAME=$realm REALM_DIR=$dir
  export KRB5_CONFIG=$dir/krb5.conf KRB5_KDC_PROFILE=$dir/kdc.conf KRB5RCACHEDIR=$dir
  export KRB5CCNAME=FILE:$dir/ccache
  cat >"$KRB5_CONFIG" <<EOT
[libdefaults]
 default_realm = $realm
 dns_lookup_kdc = false
 dns_canonicalize_hostname = false
 rdns = false
[realms]
 $realm = {
  kdc = $address:88
 }
EOT
  cat >"$KRB5_KDC_PROFILE" <<EOT
[kdcdefaults]
 kdc_listen = $address:88
 kdc_tcp_listen = $address:88
[realms]
 $realm = {
  database_name = $dir/principal
  key_stash_file = $dir/stash
  acl_file = $dir/kadm5.acl
 }
[logging]
 kdc = FILE:$dir/kdc.log
EOT
  : >"$dir/kadm5.acl"
  kdb5_util create -s -r "$realm" -P "master-$$" >/dev/null 2>&1
}

realm_user() {
  kadmin.local -r "$REALM_NAME" -q "addprinc -pw $2 $1" >/dev/null 2>&1
}

realm_service() {
  kadmin.local -r "$REALM_NAME" -q "addprinc -randkey $1" >/dev/null 2>&1
  kadmin.local -r "$REALM_NAME" -q "ktadd -k $2 $1" >/dev/null 2>&1
}

realm_start() {
  ip netns exec "$1" krb5kdc -n -r "$REALM_NAME" 2>/dev/null &
  REALM_PID=$!
  local _
  for _ in $(seq 100); do
    grep -q 'commencing operation' "$REALM_DIR/kdc.log" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "realm: krb5kdc did not start" >&2
  return 1
}

realm_kinit() {
  printf '%s\n' "$3" | ip netns exec "$1" kinit "$2" >/dev/null
}
