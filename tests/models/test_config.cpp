// ModelConfig text form: round trips, shorthands, and clear errors on bad input.
#include <gtest/gtest.h>

#include "host/core/check.h"
#include "host/models/config.h"

using namespace rf;

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
  auto expect_error = [](const std::string& text, const std::string& needle) {
    try {
      ModelConfig::parse(text);
      ADD_FAILURE() << text << " parsed";
    } catch (const rf::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error("vgg16", "unknown architecture");
  expect_error("nl-resnet18:cnl=wide", "cnl=wide is not an integer");
  expect_error("nl-resnet18:gpw=3", "gpw=3");
  expect_error("nl-resnet18:colour=red", "unknown key 'colour'");
  expect_error("nl-resnet18:shuffle=maybe", "shuffle=maybe");
  expect_error("resnet18:classes=0", "classes=0");
  expect_error("resnet18:stem=huge", "stem 'huge'");
  expect_error("resnet18:classes", "not key=value");
}
