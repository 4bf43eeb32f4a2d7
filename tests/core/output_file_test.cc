// Tests of OutputFile / WriteFileAtomic: a regular file is replaced whole, a symbolic link keeps pointing at
// its (rewritten) target, a FIFO or device is written through rather than replaced by a regular file, a
// directory is refused, and an output never committed leaves no temporary file behind.
#include "core/output_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "support/golden.h"

namespace idefics {
namespace {

namespace fs = std::filesystem;

std::string Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(OutputFileTest, RegularFilesAreReplacedWhole) {
  const std::string dir = test::MakeTempDir("output_file_regular");
  const std::string path = dir + "/out.bin";
  ASSERT_TRUE(WriteFileAtomic(path, "old contents", 12).ok());
  ASSERT_TRUE(WriteFileAtomic(path, "new", 3).ok());
  EXPECT_EQ(Slurp(path), "new");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}), 1);  // no temporary left
}

TEST(OutputFileTest, SymlinksKeepPointingAtTheirRewrittenTarget) {
  const std::string dir = test::MakeTempDir("output_file_link");
  const std::string target = dir + "/target.bin", link = dir + "/link.bin";
  ASSERT_TRUE(WriteFileAtomic(target, "old", 3).ok());
  fs::create_symlink(target, link);
  ASSERT_TRUE(WriteFileAtomic(link, "through the link", 16).ok());
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(Slurp(target), "through the link");
  const std::string dangling = dir + "/dangling.bin";
  fs::create_symlink(dir + "/not-yet.bin", dangling);
  ASSERT_TRUE(WriteFileAtomic(dangling, "x", 1).ok());
  EXPECT_TRUE(fs::is_symlink(dangling));
  EXPECT_EQ(Slurp(dir + "/not-yet.bin"), "x");
}

TEST(OutputFileTest, DevicesAndFifosAreWrittenThroughNotReplaced) {
  ASSERT_TRUE(WriteFileAtomic("/dev/null", "discarded", 9).ok());
  struct stat st {};
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));

  const std::string dir = test::MakeTempDir("output_file_fifo");
  const std::string fifo = dir + "/pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string got;
  std::thread reader([&] { got = Slurp(fifo); });
  ASSERT_TRUE(WriteFileAtomic(fifo, "via fifo", 8).ok());
  reader.join();
  EXPECT_EQ(got, "via fifo");
  ASSERT_EQ(::lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
}

TEST(OutputFileTest, DirectoriesAreRefusedAndUncommittedOutputsLeaveNothing) {
  const std::string dir = test::MakeTempDir("output_file_dir");
  const Status st = WriteFileAtomic(dir, "x", 1);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("is a directory"), std::string::npos) << st.message();
  {
    auto out = OutputFile::Open(dir + "/never.bin");
    ASSERT_TRUE(out.ok());
    std::fputs("partial", (*out)->file());
  }  // destroyed without Commit
  EXPECT_FALSE(fs::exists(dir + "/never.bin"));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}), 0);
}

}  // namespace
}  // namespace idefics
