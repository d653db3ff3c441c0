#include "gateway/reply_code.hpp"

#include <netdb.h>
#include <asio/error.hpp>

#include <cerrno>

namespace fwgate::gateway {

using protocol::socks5::Reply;

Reply toSocks5Reply(const std::error_code& ec) {
  if (!ec) return Reply::Succeeded;
  if (ec.category() == asio::error::get_netdb_category() ||
      ec.category() == asio::error::get_addrinfo_category()) {
    // A name that does not resolve, or has no address of a usable family.
    return Reply::HostUnreachable;
  }
  if (ec.category() == std::system_category() || ec.category() == std::generic_category() ||
      ec.category() == asio::error::get_system_category()) {
    switch (ec.value()) {
      case ECONNREFUSED:
        return Reply::ConnectionRefused;
      case ENETUNREACH:
      case ENETDOWN:
        return Reply::NetworkUnreachable;
      case EHOSTUNREACH:
      case EHOSTDOWN:
      case EADDRNOTAVAIL:
        return Reply::HostUnreachable;
      case ETIMEDOUT:
        return Reply::TtlExpired;
      case EACCES:
      case EPERM:
        return Reply::NotAllowed;
      case EAFNOSUPPORT:
      case EPROTONOSUPPORT:
        return Reply::AddressTypeNotSupported;
      default:
        return Reply::GeneralFailure;
    }
  }
  return Reply::GeneralFailure;
}

protocol::socks4::Reply toSocks4Reply(Reply reply) {
  return reply == Reply::Succeeded ? protocol::socks4::Reply::Granted
                                   : protocol::socks4::Reply::Rejected;
}

std::string errorText(const std::error_code& ec) {
  if (ec.category() == asio::error::get_addrinfo_category() && ec.value() < 0) {
    return ::gai_strerror(ec.value());
  }
  return ec.message();
}

const char* replyName(Reply reply) {
  switch (reply) {
    case Reply::Succeeded:
      return "succeeded";
    case Reply::GeneralFailure:
      return "general-failure";
    case Reply::NotAllowed:
      return "not-allowed";
    case Reply::NetworkUnreachable:
      return "network-unreachable";
    case Reply::HostUnreachable:
      return "host-unreachable";
    case Reply::ConnectionRefused:
      return "refused";
    case Reply::TtlExpired:
      return "ttl-expired";
    case Reply::CommandNotSupported:
      return "command-not-supported";
    case Reply::AddressTypeNotSupported:
      return "address-type-not-supported";
  }
  return "unknown";
}

}  // namespace fwgate::gateway
