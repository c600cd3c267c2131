#include "cni/ipam/store.h"

#include <sys/stat.h>

#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/fs.h"
#include "common/strings.h"
#include "tests/unit/cni/cni_test_util.h"

namespace berth::cni::ipam {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

IpAddress ip(const char* text) { return *IpAddress::parse(text); }

TEST(StoreNames, FileNameSafety) {
  for (const char* ok : {"c1", "abc-DEF_0.9", "eth0", "0123456789abcdef", "a:b"}) {
    EXPECT_TRUE(checkStoreName("container ID", ok).ok()) << ok;
  }
  struct Case {
    std::string value;
    const char* want;
  } cases[] = {
      {"", "container ID is empty"},
      {".", "\".\" and \"..\" are not allowed"},
      {"..", "\".\" and \"..\" are not allowed"},
      {"a/b", "container ID \"a/b\" is not usable: contains '/'"},
      {"a b", "contains a space, control or non-ASCII character"},
      {"a\nb", "control"},
      {"a\tb", "control"},
      {"caf\xc3\xa9", "non-ASCII"},
      {std::string(256, 'x'), "longer than 255 bytes"},
  };
  for (const Case& c : cases) {
    Status st = checkStoreName("container ID", c.value);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << c.value;
    EXPECT_THAT(std::string(st.message()), HasSubstr(c.want)) << c.value;
  }
}

class StoreTest : public ::testing::Test {
 protected:
  std::string dir() const { return dir_.sub("net"); }
  testing::TempDir dir_;
};

TEST_F(StoreTest, LockWithoutCreateOnAMissingStoreCreatesNothing) {
  Store store(dir());
  auto lock = store.lock(/*create=*/false);
  ASSERT_TRUE(lock.ok()) << lock.status();
  EXPECT_FALSE(lock->held());
  EXPECT_FALSE(fs::exists(dir()));
  auto created = store.lock(/*create=*/true);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->held());
  EXPECT_TRUE(fs::exists(dir() + "/lock"));
  struct stat st {};
  ASSERT_EQ(::stat(dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(StoreTest, AddressFilesAreLinksOfTheOwnerFile) {
  Store store(dir());
  auto lock = store.lock(true);
  ASSERT_TRUE(lock.ok());
  ASSERT_TRUE(store.writeOwner("c1", "eth0", {ip("10.1.0.2"), ip("fd00::2")}).ok());
  EXPECT_EQ(*fs::readFile(dir() + "/owner.2.c1.eth0"), "c1\neth0\n10.1.0.2\nfd00::2\n");
  auto first = store.linkAddress("c1", "eth0", ip("10.1.0.2"));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(*first);
  ASSERT_TRUE(*store.linkAddress("c1", "eth0", ip("fd00::2")));  // ':' kept in the name
  struct stat owner_st {}, v4_st {}, v6_st {};
  ASSERT_EQ(::stat((dir() + "/owner.2.c1.eth0").c_str(), &owner_st), 0);
  ASSERT_EQ(::stat((dir() + "/10.1.0.2").c_str(), &v4_st), 0);
  ASSERT_EQ(::stat((dir() + "/fd00::2").c_str(), &v6_st), 0);
  EXPECT_EQ(owner_st.st_ino, v4_st.st_ino);  // one inode per allocation
  EXPECT_EQ(owner_st.st_ino, v6_st.st_ino);
  EXPECT_EQ(owner_st.st_nlink, 3u);
  EXPECT_EQ(*fs::readFile(dir() + "/10.1.0.2"), "c1\neth0\n10.1.0.2\nfd00::2\n");

  // EEXIST: taken, owner unchanged.
  ASSERT_TRUE(store.writeOwner("c2", "eth0", {ip("10.1.0.2")}).ok());
  auto again = store.linkAddress("c2", "eth0", ip("10.1.0.2"));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_TRUE((*store.readAddress(ip("10.1.0.2")))->ownedBy("c1", "eth0"));
  ASSERT_TRUE(store.writeOwner("c2", "eth0", {}).ok());  // empty: removed
  EXPECT_FALSE(fs::exists(dir() + "/owner.2.c2.eth0"));
  EXPECT_THAT(*fs::listDir(dir()),
              UnorderedElementsAre("lock", "owner.2.c1.eth0", "10.1.0.2", "fd00::2"));

  auto all = store.scan(/*read_owners=*/true);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);  // owner files are not address files
  EXPECT_TRUE(*store.hasAddress(ip("10.1.0.2")));
  EXPECT_FALSE(*store.hasAddress(ip("10.1.0.3")));
  auto owner = store.readAddress(ip("fd00::2"));
  ASSERT_TRUE(owner.ok() && owner->has_value());
  EXPECT_TRUE((*owner)->ownedBy("c1", "eth0"));
  EXPECT_FALSE((*owner)->ownedBy("c1", "eth1"));
  EXPECT_FALSE(store.readAddress(ip("10.1.0.3"))->has_value());
  ASSERT_TRUE(store.remove(ip("10.1.0.2")).ok());
  ASSERT_TRUE(store.remove(ip("10.1.0.2")).ok());  // missing is OK
  EXPECT_EQ(store.scan(false)->size(), 1u);
}

TEST_F(StoreTest, OwnerFiles) {
  Store store(dir());
  auto lock = store.lock(true);
  ASSERT_TRUE(lock.ok());
  EXPECT_EQ(Store::ownerName("c1", "eth0"), "owner.2.c1.eth0");
  // Unambiguous although '.' may appear in both names.
  EXPECT_NE(Store::ownerName("a.b", "c"), Store::ownerName("a", "b.c"));
  std::string long_id(250, 'a');
  EXPECT_THAT(Store::ownerName(long_id, "eth0"), ::testing::StartsWith("owner.h."));
  EXPECT_LE(Store::ownerName(long_id, "eth0").size(), 255u);

  EXPECT_FALSE(store.readOwner("c1", "eth0")->has_value());
  ASSERT_TRUE(store.writeOwner("c1", "eth0", {ip("10.1.0.2"), ip("fd00::2")}).ok());
  auto listed = store.readOwner("c1", "eth0");
  ASSERT_TRUE(listed.ok() && listed->has_value()) << listed.status();
  EXPECT_THAT(**listed, ElementsAre(ip("10.1.0.2"), ip("fd00::2")));
  ASSERT_TRUE(store.writeOwner(long_id, "eth0", {ip("10.1.0.3")}).ok());
  EXPECT_THAT(**store.readOwner(long_id, "eth0"), ElementsAre(ip("10.1.0.3")));

  testing::writeFile(dir() + "/owner.2.c1.eth0", "c1\neth0\nnot-an-ip\n");
  EXPECT_EQ(store.readOwner("c1", "eth0").status().code(), absl::StatusCode::kDataLoss);
  testing::writeFile(dir() + "/owner.2.c1.eth0", "c2\neth0\n10.1.0.2\n");  // names another
  EXPECT_EQ(store.readOwner("c1", "eth0").status().code(), absl::StatusCode::kDataLoss);

  testing::writeFile(dir() + "/owner.junk", "\x01");
  auto owners = store.scanOwners();
  ASSERT_TRUE(owners.ok());
  ASSERT_EQ(owners->size(), 3u);
  int corrupt = 0;
  for (const OwnerFile& x : *owners) corrupt += x.corrupt;
  EXPECT_EQ(corrupt, 2);  // owner.junk, and c1's that names c2
  EXPECT_THAT(*store.scan(true), IsEmpty());
}

TEST_F(StoreTest, AStrayTempFileIsRemovedWhenTheNextOperationTakesTheLock) {
  Store store(dir());
  ASSERT_TRUE(store.lock(true).ok());
  testing::writeFile(dir() + "/.tmp", "c9\neth");  // a writer killed mid-write
  auto lock = store.lock(false);
  ASSERT_TRUE(lock.ok() && lock->held());
  EXPECT_FALSE(fs::exists(dir() + "/.tmp"));
}

TEST_F(StoreTest, ScanRemovesStrayTempFilesAndFlagsDamagedOwners) {
  Store store(dir());
  auto lock = store.lock(true);
  ASSERT_TRUE(lock.ok());
  // What crashed writers and other hands may leave.
  testing::writeFile(dir() + "/.tmp-4242-1", "c9\neth0\n");  // crash before link
  testing::writeFile(dir() + "/.tmp-4242-2", "c9\neth");     // crash while writing
  testing::writeFile(dir() + "/10.1.0.3", "c3\neth0\n");
  testing::writeFile(dir() + "/10.1.0.4", "");
  testing::writeFile(dir() + "/10.1.0.5", "c5\neth0");               // no final newline
  testing::writeFile(dir() + "/10.1.0.6", "c6\neth0\nextra\n");
  testing::writeFile(dir() + "/10.1.0.7", "c 7\neth0\n");
  testing::writeFile(dir() + "/10.1.0.8", std::string(70000, 'x'));
  testing::writeFile(dir() + "/10.1.0.9", "c9\n\n");
  testing::writeFile(dir() + "/README", "not ours\n");
  ASSERT_TRUE(fs::mkdirAll(dir() + "/10.1.0.10").ok());  // a directory is not an address file
  auto all = store.scan(/*read_owners=*/true);
  ASSERT_TRUE(all.ok()) << all.status();
  std::map<std::string, Allocation> by_ip;
  for (const Allocation& a : *all) by_ip[a.ip.toString()] = a;
  ASSERT_EQ(by_ip.size(), 7u);
  EXPECT_FALSE(by_ip["10.1.0.3"].corrupt());
  EXPECT_EQ(by_ip["10.1.0.3"].container_id, "c3");
  EXPECT_EQ(by_ip["10.1.0.3"].ifname, "eth0");
  for (const char* bad : {"10.1.0.4", "10.1.0.5", "10.1.0.6", "10.1.0.7", "10.1.0.8", "10.1.0.9"}) {
    EXPECT_TRUE(by_ip[bad].corrupt()) << bad;
    EXPECT_TRUE(by_ip[bad].container_id.empty()) << bad;
  }
  EXPECT_THAT(by_ip["10.1.0.6"].problem, HasSubstr("bad address line \"extra\""));
  EXPECT_THAT(by_ip["10.1.0.7"].problem, HasSubstr("container ID"));
  EXPECT_THAT(by_ip["10.1.0.8"].problem, HasSubstr("too large"));
  EXPECT_FALSE(fs::exists(dir() + "/.tmp-4242-1"));
  EXPECT_FALSE(fs::exists(dir() + "/.tmp-4242-2"));
  EXPECT_TRUE(fs::exists(dir() + "/README"));
}

TEST_F(StoreTest, CursorRoundTripAndDamagedCursorIgnored) {
  Store store(dir());
  auto lock = store.lock(true);
  ASSERT_TRUE(lock.ok());
  EXPECT_FALSE(store.lastReserved(0).has_value());
  ASSERT_TRUE(store.setLastReserved(0, ip("10.1.0.9")).ok());
  ASSERT_TRUE(store.setLastReserved(1, ip("fd00::9")).ok());
  EXPECT_EQ(store.lastReserved(0), ip("10.1.0.9"));
  EXPECT_EQ(store.lastReserved(1), ip("fd00::9"));
  EXPECT_EQ(*fs::readFile(dir() + "/last_reserved_ip.0"), "10.1.0.9" + std::string(38, ' ') + "\n");
  ASSERT_TRUE(store.setLastReserved(0, ip("10.1.0.10")).ok());  // rewritten in place
  EXPECT_EQ(store.lastReserved(0), ip("10.1.0.10"));
  testing::writeFile(dir() + "/last_reserved_ip.0", "garbage");
  EXPECT_FALSE(store.lastReserved(0).has_value());
  // Cursors are not address files.
  EXPECT_THAT(*store.scan(true), IsEmpty());
  EXPECT_THAT(*fs::listDir(dir()), UnorderedElementsAre("lock", "last_reserved_ip.0",
                                                         "last_reserved_ip.1"));
}

}  // namespace
}  // namespace berth::cni::ipam
