// When a firewall client's Hello carries a Kerberos token, without a KDC: the modes that send
// none, the default service name, and Auto with no ticket (a note, no error; Yes: an error).
// Tokens made against a real KDC are tests/integration/test_kerberos.py's.
#include "client/secure/kerberos_proof.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

namespace fwgate::client {
namespace {

using Mode = ClientConfig::Kerberos;

class NoTicket : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("KRB5CCNAME", "FILE:/nonexistent/fwgate-test-ccache", 1);
    ::setenv("KRB5_CONFIG", "/dev/null", 1);
  }
  void TearDown() override {
    ::unsetenv("KRB5CCNAME");
    ::unsetenv("KRB5_CONFIG");
  }
  crypto::Key channel{};
};

TEST(KerberosProof, DefaultServiceIsTheGatewaysHost) {
  EXPECT_EQ(defaultKerberosService("10.1.0.1:1745"), "fwgate@10.1.0.1");
  EXPECT_EQ(defaultKerberosService("gw.example.test:1745"), "fwgate@gw.example.test");
  EXPECT_EQ(defaultKerberosService("[2001:db8::1]:1745"), "fwgate@2001:db8::1");
  EXPECT_EQ(defaultKerberosService("gw"), "fwgate@gw");
}

TEST_F(NoTicket, NoAndAPasswordSendNone) {
  std::string error;
  KerberosProof no(Mode::No, {});
  EXPECT_TRUE(no.tokenFor("gw:1745", channel, false, error).empty());
  KerberosProof automatic(Mode::Auto, {});
  EXPECT_TRUE(automatic.tokenFor("gw:1745", channel, true, error).empty());
  EXPECT_TRUE(error.empty());
  EXPECT_TRUE(automatic.note().empty());  // not even asked: the password is the proof
}

TEST_F(NoTicket, AutoWithoutATicketNotesWhy) {
  std::string error;
  KerberosProof automatic(Mode::Auto, {});
  EXPECT_TRUE(automatic.tokenFor("gw:1745", channel, false, error).empty());
  EXPECT_TRUE(error.empty());
  EXPECT_NE(automatic.note().find("no Kerberos ticket"), std::string::npos) << automatic.note();
}

TEST_F(NoTicket, YesWithoutATicketIsAnError) {
  std::string error;
  KerberosProof yes(Mode::Yes, "fwgate@gw.example.test");
  EXPECT_TRUE(yes.tokenFor("gw:1745", channel, false, error).empty());
  EXPECT_NE(error.find("Kerberos for fwgate@gw.example.test"), std::string::npos) << error;
  EXPECT_EQ(yes.lastService(), "fwgate@gw.example.test");
}

}  // namespace
}  // namespace fwgate::client
