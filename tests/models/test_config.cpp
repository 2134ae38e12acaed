// ModelConfig text form: round trips, shorthands, and clear errors on bad input.
#include <gtest/gtest.h>

#include "host/core/check.h"
#include "host/models/config.h"
#include "testing.h"

using namespace rf;

namespace {
// ModelConfig::parse(text) must throw an rf::Error whose message holds needle.
void expect_error(const std::string& text, const std::string& needle) {
  rf::testing::expect_error([&] { ModelConfig::parse(text); }, {needle}, text);
}
}  // namespace

TEST(ModelConfig, ParsesAndRoundTrips) {
  for (const char* text : {"resnet18", "nl-resnet18:cnl=dw,gpw=4", "nl-resnet18:cnl=512,shuffle=off,seed=7",
                           "nl-resnet18:cnl=768,classes=100,stem=large,init_seed=3", "resnet18:classes=1000,stem=large"}) {
    SCOPED_TRACE(text);
    ModelConfig c = ModelConfig::parse(text);
    EXPECT_EQ(ModelConfig::parse(c.str()), c);
  }
  ModelConfig c = ModelConfig::parse("nl-resnet18:cnl=512,gpw=2,shuffle=off,seed=9,classes=7");
  EXPECT_TRUE(c.is_nl());
  EXPECT_EQ(c.cnl, 512);
  EXPECT_EQ(c.gpw, 2);
  EXPECT_FALSE(c.shuffle);
  EXPECT_EQ(c.seed, 9u);
  EXPECT_EQ(c.classes, 7);
  EXPECT_EQ(c.name(), "nl-resnet18-512");
  EXPECT_EQ(c.nl_width(64), 512);
  EXPECT_EQ(ModelConfig::parse("nl-resnet18").nl_width(128), 128);  // dw by default
  EXPECT_EQ(ModelConfig::parse("nl-resnet18-dw").name(), "nl-resnet18-dw");
  EXPECT_EQ(ModelConfig::parse("nl-resnet18-768").cnl, 768);
}

TEST(ModelConfig, SeedRuleIsBasePlusIndex) {
  ModelConfig c = ModelConfig::parse("nl-resnet18:seed=100");
  EXPECT_EQ(c.module_seed(0), 100u);
  EXPECT_EQ(c.module_seed(15), 115u);
}

TEST(ModelConfig, BadInputNamesTheField) {
  expect_error("vgg16", "unknown architecture");
  expect_error("nl-resnet18:cnl=wide", "cnl=wide (expected an integer in 1..4096)");
  expect_error("nl-resnet18:gpw=3", "gpw=3");
  expect_error("nl-resnet18:colour=red", "unknown key 'colour'");
  expect_error("nl-resnet18:shuffle=maybe", "shuffle=maybe");
  expect_error("resnet18:classes=0", "classes=0");
  expect_error("resnet18:stem=huge", "stem 'huge'");
  expect_error("resnet18:classes", "not key=value");
}

// Issue 18, class 6: seeds are unsigned 64-bit; every accepted seed round-trips, negative ones are refused.
TEST(ModelConfig, SeedsRoundTripOverTheWholeUnsignedRangeAndNegativeOnesAreRefused) {
  for (const char* s : {"0", "9223372036854775807", "9223372036854775808", "18446744073709551615"}) {
    SCOPED_TRACE(s);
    ModelConfig c = ModelConfig::parse(std::string("nl-resnet18:seed=") + s + ",init_seed=" + s);
    EXPECT_EQ(std::to_string(c.seed), s);
    EXPECT_EQ(ModelConfig::parse(c.str()), c);
    EXPECT_EQ(ModelConfig::parse(c.str()).seed, c.seed);
    EXPECT_EQ(ModelConfig::parse(c.str()).init_seed, c.init_seed);
  }
  expect_error("nl-resnet18:seed=-1", "seed=-1 (expected an unsigned integer 0..18446744073709551615)");
  expect_error("nl-resnet18:init_seed=-5", "init_seed=-5 (expected an unsigned integer");
  expect_error("nl-resnet18:seed=18446744073709551616", "seed=18446744073709551616 (expected an unsigned");
  expect_error("nl-resnet18:seed=+3", "seed=+3");
  expect_error("nl-resnet18:seed= 3", "seed= 3");
  expect_error("nl-resnet18:seed=0x10", "seed=0x10");
}

// Issue 18, class 4: absurd widths are refused when the text is parsed, naming the field and the range.
TEST(ModelConfig, AbsurdWidthsAreRefusedAtParseTime) {
  expect_error("nl-resnet18:cnl=65536", "cnl=65536 (expected an integer in 1..4096)");
  expect_error("nl-resnet18:cnl=99999999999999999999999", "cnl=99999999999999999999999 (expected an integer in 1..4096)");
  expect_error("nl-resnet18:cnl=0", "cnl=0 (expected an integer in 1..4096)");
  // 20 digits above 2^64: once a bare std::out_of_range from stoull (found by fuzz/fuzz_config.cpp).
  expect_error("nl-resnet18:cnl=76184467440737095515", "cnl=76184467440737095515 (expected an integer in 1..4096)");
  expect_error("nl-resnet18:cnl=-4", "cnl=-4");
  expect_error("resnet18:classes=1000000", "classes=1000000 (expected an integer in 1..100000)");
  expect_error("resnet18:classes=4294967297", "classes=4294967297");  // would wrap to 1 through an int cast
  expect_error("resnet18:task=detect,neck=100000", "neck=100000 (expected an integer in 8..1024)");
  expect_error("nl-resnet18:gpw=128", "gpw=128 (expected an integer in 1..64)");
  expect_error("nl-resnet18:cnl=512,cnl=768", "key 'cnl' given twice");
  EXPECT_EQ(ModelConfig::parse("nl-resnet18:cnl=4096").cnl, 4096);
}

// Issue 18, class 6: control characters (a terminal escape) in a config are escaped in the message.
TEST(ModelConfig, ControlCharactersInTheTextAreEscapedInErrors) {
  for (const std::string& text : {std::string("res\x1b[31mnet18"), std::string("resnet18:stem=\x1b]0;pwned\x07"),
                                 std::string("resnet18:colour\r=red"), std::string("resnet18:classes=\xff\xfe")}) {
    try {
      ModelConfig::parse(text);
      ADD_FAILURE() << "parsed";
    } catch (const rf::Error& e) {
      const std::string m = e.what();
      for (char c : m) EXPECT_FALSE((unsigned char)c < 0x20 || (unsigned char)c >= 0x80) << m;
      EXPECT_TRUE(m.find("\\x1b") != std::string::npos || m.find("\\x0d") != std::string::npos ||
                  m.find("\\xff") != std::string::npos) << m;
    }
  }
}
