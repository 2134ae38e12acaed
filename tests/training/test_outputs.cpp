// Output paths checked before the work, the one atomic writer (stale temps of dead writers removed), run folders
// that hold one run only, and JSON results that survive names that are not valid UTF-8 (issue 18, classes 5-7).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "host/core/check.h"
#include "host/core/printable.h"
#include "host/package/package.h"
#include "training/outputs.h"
#include "training/provenance.h"
#include "testing.h"

namespace fs = std::filesystem;
using namespace rf;

namespace {
using rf::testing::temp_dir;
using rf::testing::expect_error;
void touch(const std::string& p) { std::ofstream(p) << "x"; }
}  // namespace

TEST(Outputs, BadOutputFilesAreRefusedNamingTheOption) {
  const std::string d = temp_dir("files");
  expect_error([&] { check_output_file(d, "--out"); }, {"--out", d, "is a folder"});
  touch(d + "/plain");
  expect_error([&] { check_output_file(d + "/plain/x.rfpk", "--checkpoint"); }, {"--checkpoint", "is a file"});
  expect_error([&] { check_output_file(d + "/plain/deeper/x.rfpk", "-o"); }, {"-o", "plain' is a file"});
  expect_error([&] { check_output_file("/dev/null", "--out"); }, {"--out", "/dev/null", "not a regular file"});
  expect_error([&] { check_output_file("", "--markdown"); }, {"--markdown", "empty"});
  // Fine: a new file in a new folder (created), an existing file (replaced later).
  check_output_file(d + "/new/sub/x.rfpk", "--out");
  EXPECT_TRUE(fs::is_directory(d + "/new/sub"));
  check_output_file(d + "/plain", "--out");
  EXPECT_EQ(std::distance(fs::directory_iterator(d + "/new/sub"), fs::directory_iterator()), 0);  // no probe left
  expect_error([&] { check_output_dir(d + "/plain", "--out"); }, {"--out", "is a file, expected a folder"});
  fs::remove_all(d);
}

TEST(Outputs, ReusedRunFolderIsRefusedUnlessOverwriteWhichRemovesTheOldResults) {
  const std::string d = temp_dir("run");
  EXPECT_EQ(prepare_run_dir(d + "/fresh", false, "--out"), 0);
  fs::create_directories(d + "/old/packages");
  fs::create_directories(d + "/old/pictures");
  touch(d + "/old/classify.json");
  touch(d + "/old/packages/resnet18-s0-f32.rfpk");
  touch(d + "/old/pictures/detect-00-x.png");
  touch(d + "/old/notes.txt");  // not a result: kept
  expect_error([&] { prepare_run_dir(d + "/old", false, "--out"); },
               {"--out", "already holds results of another run", "classify.json", "--overwrite"});
  EXPECT_EQ(prepare_run_dir(d + "/old", true, "--out"), 3);
  EXPECT_FALSE(fs::exists(d + "/old/packages/resnet18-s0-f32.rfpk"));
  EXPECT_FALSE(fs::exists(d + "/old/classify.json"));
  EXPECT_TRUE(fs::exists(d + "/old/notes.txt"));
  EXPECT_EQ(prepare_run_dir(d + "/old", false, "--out"), 0);
  fs::remove_all(d);
}

TEST(Outputs, AtomicWriteRemovesTempFilesOfDeadWritersOnly) {
  const std::string d = temp_dir("tmp");
  const std::string target = d + "/classify.json";
  // A pid that certainly is dead: a child that has exited and been reaped.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  ::waitpid(child, nullptr, 0);
  const std::string dead = target + ".tmp." + std::to_string(child);
  const std::string live = target + ".tmp." + std::to_string(::getppid());  // our parent is alive
  const std::string legacy = target + ".tmp";
  const std::string other = d + "/other.json.tmp." + std::to_string(child);  // another target's: not ours to judge
  for (const std::string& f : {dead, live, legacy, other}) touch(f);
  write_text_atomic(target, "{}\n");
  EXPECT_TRUE(fs::exists(target));
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_FALSE(fs::exists(legacy));
  EXPECT_TRUE(fs::exists(live));
  EXPECT_TRUE(fs::exists(other));
  // Packages go through the same writer.
  const std::string pk = d + "/a.rfpk", pk_dead = pk + ".tmp." + std::to_string(child);
  touch(pk_dead);
  Package p;
  write_package(pk, p);
  EXPECT_FALSE(fs::exists(pk_dead));
  fs::remove_all(d);
}

TEST(Outputs, JsonWithInvalidUtf8NamesIsWrittenNotThrown) {
  const std::string d = temp_dir("utf8");
  nlohmann::json j = {{"classes", {"ok", std::string("caf\xe9"), std::string("\xff\xfe"), "ümlaut"}},
                      {"acc", 0.5}};
  EXPECT_THROW((void)j.dump(), nlohmann::json::type_error);  // what used to lose the run
  write_json_atomic(d + "/r.json", j);
  std::ifstream f(d + "/r.json");
  const nlohmann::json back = nlohmann::json::parse(f);  // valid UTF-8 now
  EXPECT_EQ(back["acc"].get<double>(), 0.5);
  EXPECT_EQ(back["classes"][0], "ok");
  EXPECT_EQ(back["classes"][1], "caf\xef\xbf\xbd");  // U+FFFD marks the bad byte
  EXPECT_EQ(back["classes"][3], "ümlaut");
  fs::remove_all(d);
}

TEST(Outputs, PrintableEscapesControlsAndInvalidUtf8) {
  EXPECT_EQ(printable("plain name"), "plain name");
  EXPECT_EQ(printable("ümlaut"), "ümlaut");
  EXPECT_EQ(printable("a\x1b[31mred"), "a\\x1b[31mred");
  EXPECT_EQ(printable("line\nbreak\r"), "line\\x0abreak\\x0d");
  EXPECT_EQ(printable("\xff"), "\\xff");
  EXPECT_EQ(printable("\xc2\x9b" "1m"), "\\xc2\\x9b1m");  // 8-bit CSI
  EXPECT_EQ(printable("back\\slash"), "back\\\\slash");
  EXPECT_EQ(printable_lines("one\x07\ntwo"), "one\\x07\ntwo");
}
