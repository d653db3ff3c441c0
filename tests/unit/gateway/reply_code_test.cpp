#include "gateway/reply_code.hpp"

#include <gtest/gtest.h>

#include <asio/error.hpp>
#include <cerrno>

namespace fwgate::gateway {
namespace {

using protocol::socks5::Reply;

struct Case {
  std::error_code error;
  Reply reply;
};

TEST(ReplyCode, MapsEveryErrorToItsRfc1928Reply) {
  const std::vector<Case> table = {
      {{}, Reply::Succeeded},
      {{ECONNREFUSED, std::system_category()}, Reply::ConnectionRefused},
      {{ENETUNREACH, std::system_category()}, Reply::NetworkUnreachable},
      {{ENETDOWN, std::system_category()}, Reply::NetworkUnreachable},
      {{EHOSTUNREACH, std::system_category()}, Reply::HostUnreachable},
      {{EHOSTDOWN, std::system_category()}, Reply::HostUnreachable},
      {{ETIMEDOUT, std::system_category()}, Reply::TtlExpired},
      {{EACCES, std::system_category()}, Reply::NotAllowed},
      {{EPERM, std::system_category()}, Reply::NotAllowed},
      {{EAFNOSUPPORT, std::system_category()}, Reply::AddressTypeNotSupported},
      {{ECONNRESET, std::system_category()}, Reply::GeneralFailure},
      {{EMFILE, std::system_category()}, Reply::GeneralFailure},
      {asio::error::host_not_found, Reply::HostUnreachable},
      {asio::error::host_not_found_try_again, Reply::HostUnreachable},
      {{EAI_NONAME, asio::error::get_addrinfo_category()}, Reply::HostUnreachable},
      {asio::error::timed_out, Reply::TtlExpired},
      {asio::error::connection_refused, Reply::ConnectionRefused},
  };
  for (const auto& c : table) {
    EXPECT_EQ(toSocks5Reply(c.error), c.reply) << c.error.message();
  }
}

TEST(ReplyCode, Socks4HasOneFailureCode) {
  EXPECT_EQ(toSocks4Reply(Reply::Succeeded), protocol::socks4::Reply::Granted);
  for (auto r : {Reply::GeneralFailure, Reply::NotAllowed, Reply::ConnectionRefused,
                 Reply::HostUnreachable, Reply::TtlExpired, Reply::CommandNotSupported}) {
    EXPECT_EQ(toSocks4Reply(r), protocol::socks4::Reply::Rejected);
  }
}

TEST(ReplyCode, NamesAreDistinct) {
  std::set<std::string> names;
  for (int i = 0; i <= 8; ++i) names.insert(replyName(static_cast<Reply>(i)));
  EXPECT_EQ(names.size(), 9u);
  EXPECT_STREQ(replyName(Reply::ConnectionRefused), "refused");
}

}  // namespace
}  // namespace fwgate::gateway
