#include "cri/pod_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

namespace berth::cri {
namespace {

namespace v1 = runtime::v1;
using ::testing::HasSubstr;

class PodStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = Database::open(":memory:");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    auto store = PodStore::open(db_.get());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  PodRecord pod(const std::string& name, uint32_t attempt = 0) {
    PodRecord p;
    p.id = newId();
    p.config.mutable_metadata()->set_name(name);
    p.config.mutable_metadata()->set_namespace_("default");
    p.config.mutable_metadata()->set_uid("uid-" + name);
    p.config.mutable_metadata()->set_attempt(attempt);
    (*p.config.mutable_labels())["app"] = name;
    p.created_at = 1000 + attempt;
    p.netns_path = "/run/berth/ns/" + p.id + "/net";
    p.ips = {"10.244.0.5"};
    return p;
  }

  ContainerRecord container(const PodRecord& p, const std::string& name) {
    ContainerRecord c;
    c.id = newId();
    c.pod_id = p.id;
    c.config.mutable_metadata()->set_name(name);
    c.config.mutable_image()->set_image("busybox");
    (*c.config.mutable_labels())["role"] = name;
    c.created_at = 2000;
    c.log_path = "/var/log/pods/x/" + name + "/0.log";
    return c;
  }

  std::unique_ptr<Database> db_;
  std::unique_ptr<PodStore> store_;
};

TEST_F(PodStoreTest, IdsAreRandom64Hex) {
  std::set<std::string> ids;
  for (int i = 0; i < 100; ++i) ids.insert(newId());
  EXPECT_EQ(ids.size(), 100u);
  EXPECT_EQ(ids.begin()->size(), 64u);
  EXPECT_EQ(ids.begin()->find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST_F(PodStoreTest, PodRoundTripAndPrefixLookup) {
  PodRecord p = pod("web");
  ASSERT_TRUE(store_->addPod(p).ok());
  auto got = store_->getPod(p.id.substr(0, 8));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->id, p.id);
  EXPECT_EQ(got->config.metadata().name(), "web");
  EXPECT_EQ(got->ips, p.ips);
  EXPECT_EQ(got->netns_path, p.netns_path);
  EXPECT_EQ(got->state, v1::SANDBOX_READY);

  got->state = v1::SANDBOX_NOTREADY;
  got->ips.clear();
  ASSERT_TRUE(store_->updatePod(*got).ok());
  EXPECT_EQ(store_->getPod(p.id)->state, v1::SANDBOX_NOTREADY);
  EXPECT_TRUE(store_->getPod(p.id)->ips.empty());
  EXPECT_EQ(store_->getPod(newId()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->getPod("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(PodStoreTest, PodNameIsReservedPerAttempt) {
  PodRecord first = pod("web");
  ASSERT_TRUE(store_->addPod(first).ok());
  Status dup = store_->addPod(pod("web"));
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(dup.message()), HasSubstr("web_default_uid-web_0"));
  EXPECT_THAT(std::string(dup.message()), HasSubstr(first.id));
  EXPECT_TRUE(store_->addPod(pod("web", 1)).ok());
}

TEST_F(PodStoreTest, InvalidPodsAreRefused) {
  PodRecord bad = pod("x");
  bad.id = "xyz";
  EXPECT_EQ(store_->addPod(bad).code(), absl::StatusCode::kInvalidArgument);
  PodRecord no_meta = pod("y");
  no_meta.config.mutable_metadata()->clear_uid();
  EXPECT_EQ(store_->addPod(no_meta).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(PodStoreTest, ContainersBelongToPodsAndGoWithThem) {
  PodRecord p = pod("web");
  ASSERT_TRUE(store_->addPod(p).ok());
  ContainerRecord c = container(p, "nginx");
  ASSERT_TRUE(store_->addContainer(c).ok());
  EXPECT_EQ(store_->addContainer(container(p, "nginx")).code(),
            absl::StatusCode::kAlreadyExists);
  ContainerRecord orphan = container(p, "orphan");
  orphan.pod_id = newId();
  EXPECT_EQ(store_->addContainer(orphan).code(), absl::StatusCode::kNotFound);

  c.state = v1::CONTAINER_EXITED;
  c.started_at = 3000;
  c.finished_at = 4000;
  c.exit_code = 137;
  c.reason = "OOMKilled";
  ASSERT_TRUE(store_->updateContainer(c).ok());
  auto got = store_->getContainer(c.id.substr(0, 6));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->exit_code, 137);
  EXPECT_EQ(got->reason, "OOMKilled");
  EXPECT_EQ(got->log_path, c.log_path);
  EXPECT_EQ(got->config.image().image(), "busybox");

  ASSERT_TRUE(store_->removePod(p.id).ok());
  EXPECT_EQ(store_->getContainer(c.id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->removePod(p.id).ok()) << "idempotent";
  EXPECT_TRUE(store_->removeContainer(c.id).ok()) << "idempotent";
}

TEST_F(PodStoreTest, ListFilters) {
  PodRecord a = pod("a"), b = pod("b");
  b.state = v1::SANDBOX_NOTREADY;
  ASSERT_TRUE(store_->addPod(a).ok());
  ASSERT_TRUE(store_->addPod(b).ok());
  ASSERT_TRUE(store_->addContainer(container(a, "one")).ok());
  ASSERT_TRUE(store_->addContainer(container(a, "two")).ok());
  ASSERT_TRUE(store_->addContainer(container(b, "one")).ok());

  EXPECT_EQ(store_->listPods()->size(), 2u);
  PodFilter ready;
  ready.state = v1::SANDBOX_READY;
  ASSERT_EQ(store_->listPods(ready)->size(), 1u);
  EXPECT_EQ(store_->listPods(ready)->front().id, a.id);
  PodFilter by_label;
  by_label.labels = {{"app", "b"}};
  EXPECT_EQ(store_->listPods(by_label)->front().id, b.id);

  ContainerFilter of_a;
  of_a.pod_id_prefix = a.id.substr(0, 10);
  EXPECT_EQ(store_->listContainers(of_a)->size(), 2u);
  ContainerFilter role;
  role.labels = {{"role", "one"}};
  EXPECT_EQ(store_->listContainers(role)->size(), 2u);
  ContainerFilter running;
  running.state = v1::CONTAINER_RUNNING;
  EXPECT_TRUE(store_->listContainers(running)->empty());
}

}  // namespace
}  // namespace berth::cri
