#include "gss/gss.hpp"

#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>
#include <krb5/krb5.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <set>

namespace fwgate::gss {

namespace {

// GSS-API's text for a major and a minor status, each code in turn.
std::string statusText(OM_uint32 major, OM_uint32 minor, const gss_OID mech) {
  std::string text;
  const auto append = [&](OM_uint32 code, int type) {
    OM_uint32 context = 0;
    do {
      OM_uint32 ignored = 0;
      gss_buffer_desc message = GSS_C_EMPTY_BUFFER;
      if (gss_display_status(&ignored, code, type, mech, &context, &message) != GSS_S_COMPLETE) {
        break;
      }
      if (!text.empty()) text += ": ";
      text.append(static_cast<const char*>(message.value), message.length);
      gss_release_buffer(&ignored, &message);
    } while (context != 0);
  };
  append(major, GSS_C_GSS_CODE);
  if (minor != 0) append(minor, GSS_C_MECH_CODE);
  return text;
}

Token tokenOf(gss_buffer_desc& buffer) {
  const auto* p = static_cast<const std::uint8_t*>(buffer.value);
  Token out(p, p + buffer.length);
  OM_uint32 ignored = 0;
  gss_release_buffer(&ignored, &buffer);
  return out;
}

gss_buffer_desc view(std::span<const std::uint8_t> bytes) {
  return gss_buffer_desc{bytes.size(), const_cast<std::uint8_t*>(bytes.data())};
}

std::string krb5Error(krb5_context context, krb5_error_code code) {
  const char* message = krb5_get_error_message(context, code);
  std::string out = message;
  krb5_free_error_message(context, message);
  return out;
}

std::atomic<std::uint64_t> g_keytabs{0};

}  // namespace

// The keytab's keys, copied once into a MEMORY keytab of this acceptor (MIT reads a FILE keytab
// again at every accept), and the GSS-API credential over it.
struct Acceptor::Credential {
  krb5_context context = nullptr;
  krb5_keytab memory = nullptr;
  gss_cred_id_t handle = GSS_C_NO_CREDENTIAL;
  ~Credential() {
    OM_uint32 ignored = 0;
    if (handle != GSS_C_NO_CREDENTIAL) gss_release_cred(&ignored, &handle);
    if (memory != nullptr) krb5_kt_close(context, memory);
    if (context != nullptr) krb5_free_context(context);
  }
};

std::shared_ptr<const Acceptor> Acceptor::fromKeytab(const std::string& path, std::string& error) {
  if (access(path.c_str(), R_OK) != 0) {
    error = std::strerror(errno);
    return nullptr;
  }
  std::shared_ptr<Acceptor> out(new Acceptor());
  out->keytab_ = path;
  auto c = std::make_unique<Credential>();
  if (const krb5_error_code code = krb5_init_context(&c->context); code != 0) {
    error = "krb5 cannot start (krb5.conf?)";
    return nullptr;
  }
  const std::string memoryName = "MEMORY:fwgate-acceptor-" + std::to_string(::getpid()) + "-" +
                                 std::to_string(g_keytabs.fetch_add(1));
  krb5_keytab file = nullptr;
  krb5_kt_cursor cursor = nullptr;
  const std::string fileName = "FILE:" + path;
  krb5_error_code code = krb5_kt_resolve(c->context, fileName.c_str(), &file);
  if (code == 0) code = krb5_kt_resolve(c->context, memoryName.c_str(), &c->memory);
  if (code == 0) code = krb5_kt_start_seq_get(c->context, file, &cursor);
  if (code != 0) {
    error = krb5Error(c->context, code);
    if (file != nullptr) krb5_kt_close(c->context, file);
    return nullptr;
  }
  std::set<std::string> seen;
  krb5_keytab_entry entry;
  while ((code = krb5_kt_next_entry(c->context, file, &entry, &cursor)) == 0) {
    char* text = nullptr;
    if (krb5_unparse_name(c->context, entry.principal, &text) == 0) {
      if (seen.insert(text).second) out->principals_.emplace_back(text);
      krb5_free_unparsed_name(c->context, text);
    }
    const krb5_error_code added = krb5_kt_add_entry(c->context, c->memory, &entry);
    krb5_free_keytab_entry_contents(c->context, &entry);
    if (added != 0) {
      error = krb5Error(c->context, added);
      break;
    }
  }
  krb5_kt_end_seq_get(c->context, file, &cursor);
  krb5_kt_close(c->context, file);
  if (!error.empty()) return nullptr;
  if (code != KRB5_KT_END) {
    error = krb5Error(c->context, code);
    return nullptr;
  }
  if (out->principals_.empty()) {
    error = "it holds no key";
    return nullptr;
  }
  // Any principal of the keytab: GSS_C_NO_NAME, with the keytab as the credential store (not the
  // process-wide KRB5_KTNAME), so that a reload can bring another keytab.
  gss_key_value_element_desc element{"keytab", memoryName.c_str()};
  gss_key_value_set_desc store{1, &element};
  OM_uint32 minor = 0;
  const OM_uint32 major =
      gss_acquire_cred_from(&minor, GSS_C_NO_NAME, GSS_C_INDEFINITE, GSS_C_NO_OID_SET, GSS_C_ACCEPT,
                            &store, &c->handle, nullptr, nullptr);
  if (GSS_ERROR(major)) {
    error = statusText(major, minor, GSS_C_NO_OID);
    return nullptr;
  }
  out->credential_ = std::move(c);
  return out;
}

Acceptor::~Acceptor() = default;

struct Context::State {
  std::shared_ptr<const Acceptor> acceptor;  // null: an initiator
  std::string service;
  bool mutual = false;
  Token binding;
  gss_ctx_id_t handle = GSS_C_NO_CONTEXT;
  gss_name_t target = GSS_C_NO_NAME;
  bool done = false;
  bool failed = false;
  ~State() {
    OM_uint32 ignored = 0;
    if (handle != GSS_C_NO_CONTEXT) gss_delete_sec_context(&ignored, &handle, GSS_C_NO_BUFFER);
    if (target != GSS_C_NO_NAME) gss_release_name(&ignored, &target);
  }
};

Context::Context(std::unique_ptr<State> state) : state_(std::move(state)) {}
Context::~Context() = default;
Context::Context(Context&&) noexcept = default;
Context& Context::operator=(Context&&) noexcept = default;

Context Context::accepting(std::shared_ptr<const Acceptor> acceptor, Token binding) {
  auto s = std::make_unique<State>();
  s->acceptor = std::move(acceptor);
  s->binding = std::move(binding);
  return Context(std::move(s));
}

Context Context::initiating(std::string service, bool mutual, Token binding) {
  auto s = std::make_unique<State>();
  s->service = std::move(service);
  s->mutual = mutual;
  s->binding = std::move(binding);
  return Context(std::move(s));
}

bool Context::established() const {
  return state_ && state_->done;
}

Step Context::step(std::span<const std::uint8_t> peerToken) {
  Step out;
  State& s = *state_;
  if (s.done || s.failed) {
    out.error = "the exchange is over";
    return out;
  }
  gss_channel_bindings_struct bindings{};
  bindings.application_data = view(s.binding);
  const gss_channel_bindings_t cb = s.binding.empty() ? GSS_C_NO_CHANNEL_BINDINGS : &bindings;
  gss_buffer_desc input = view(peerToken);
  gss_buffer_desc output = GSS_C_EMPTY_BUFFER;
  OM_uint32 minor = 0;
  OM_uint32 major = 0;
  gss_OID mech = GSS_C_NO_OID;
  if (s.acceptor) {
    gss_name_t client = GSS_C_NO_NAME;
    OM_uint32 flags = 0;
    major = gss_accept_sec_context(&minor, &s.handle, s.acceptor->credential_->handle, &input, cb,
                                   &client, &mech, &output, &flags, nullptr, nullptr);
    // MIT accepts a token that carries no channel bindings whatever the acceptor gives (for old
    // initiators); one that must be bound has to say it is.
    if (major == GSS_S_COMPLETE && !s.binding.empty() && (flags & GSS_C_CHANNEL_BOUND_FLAG) == 0) {
      OM_uint32 ignored = 0;
      if (client != GSS_C_NO_NAME) gss_release_name(&ignored, &client);
      gss_release_buffer(&ignored, &output);
      s.failed = true;
      out.error = "the token is bound to no channel (its client gave no channel bindings)";
      return out;
    }
    if (major == GSS_S_COMPLETE) {
      gss_buffer_desc name = GSS_C_EMPTY_BUFFER;
      OM_uint32 ignored = 0;
      if (gss_display_name(&ignored, client, &name, nullptr) == GSS_S_COMPLETE) {
        out.peer.assign(static_cast<const char*>(name.value), name.length);
        gss_release_buffer(&ignored, &name);
      }
    }
    if (client != GSS_C_NO_NAME) {
      OM_uint32 ignored = 0;
      gss_release_name(&ignored, &client);
    }
  } else {
    if (s.target == GSS_C_NO_NAME) {
      gss_buffer_desc name{s.service.size(), s.service.data()};
      major = gss_import_name(&minor, &name, GSS_C_NT_HOSTBASED_SERVICE, &s.target);
      if (GSS_ERROR(major)) {
        s.failed = true;
        out.error = statusText(major, minor, GSS_C_NO_OID);
        return out;
      }
    }
    const OM_uint32 flags =
        GSS_C_INTEG_FLAG | GSS_C_SEQUENCE_FLAG | (s.mutual ? GSS_C_MUTUAL_FLAG : 0);
    major = gss_init_sec_context(&minor, GSS_C_NO_CREDENTIAL, &s.handle, s.target,
                                 const_cast<gss_OID>(gss_mech_krb5), flags, GSS_C_INDEFINITE, cb,
                                 peerToken.empty() ? GSS_C_NO_BUFFER : &input, &mech, &output,
                                 nullptr, nullptr);
  }
  out.token = tokenOf(output);
  if (GSS_ERROR(major)) {
    s.failed = true;
    out.error = statusText(major, minor, mech);
    out.token.clear();  // an error token tells the peer nothing it needs
    return out;
  }
  if (major & GSS_S_CONTINUE_NEEDED) {
    out.state = Step::State::Continue;
  } else {
    s.done = true;
    out.state = Step::State::Done;
  }
  return out;
}

Token Context::wrap(std::span<const std::uint8_t> message) const {
  if (!established()) return {};
  gss_buffer_desc input = view(message);
  gss_buffer_desc output = GSS_C_EMPTY_BUFFER;
  OM_uint32 minor = 0;
  if (GSS_ERROR(gss_wrap(&minor, state_->handle, 0, GSS_C_QOP_DEFAULT, &input, nullptr, &output))) {
    return {};
  }
  return tokenOf(output);
}

Token Context::unwrap(std::span<const std::uint8_t> token, bool& ok) const {
  ok = false;
  if (!established()) return {};
  gss_buffer_desc input = view(token);
  gss_buffer_desc output = GSS_C_EMPTY_BUFFER;
  OM_uint32 minor = 0;
  if (GSS_ERROR(gss_unwrap(&minor, state_->handle, &input, &output, nullptr, nullptr))) return {};
  ok = true;
  return tokenOf(output);
}

bool haveInitiatorCredentials() {
  OM_uint32 minor = 0;
  gss_cred_id_t cred = GSS_C_NO_CREDENTIAL;
  OM_uint32 lifetime = 0;
  const OM_uint32 major =
      gss_acquire_cred(&minor, GSS_C_NO_NAME, GSS_C_INDEFINITE, GSS_C_NO_OID_SET, GSS_C_INITIATE,
                       &cred, nullptr, &lifetime);
  if (GSS_ERROR(major)) return false;
  OM_uint32 ignored = 0;
  gss_release_cred(&ignored, &cred);
  return lifetime > 0;
}

}  // namespace fwgate::gss
