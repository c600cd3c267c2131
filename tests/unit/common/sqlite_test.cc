#include "common/sqlite.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <limits>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/fs.h"

namespace berth {
namespace {

using ::testing::HasSubstr;

class SqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-sqlite-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { ASSERT_TRUE(fs::removeAll(dir_).ok()); }

  std::unique_ptr<Database> openDb(const std::string& name = "berth.db", int busy_ms = 10000) {
    auto db = Database::open(dir_ + "/" + name, busy_ms);
    EXPECT_TRUE(db.ok()) << db.status();
    return db.ok() ? std::move(*db) : nullptr;
  }

  // The single integer a query returns.
  static int64_t queryInt(Database& db, std::string_view sql) {
    auto st = db.prepare(sql);
    EXPECT_TRUE(st.ok()) << st.status();
    if (!st.ok()) return -1;
    auto row = st->step();
    EXPECT_TRUE(row.ok() && *row) << sql;
    return st->columnInt(0);
  }

  static std::string queryText(Database& db, std::string_view sql) {
    auto st = db.prepare(sql);
    EXPECT_TRUE(st.ok()) << st.status();
    if (!st.ok()) return "";
    auto row = st->step();
    EXPECT_TRUE(row.ok() && *row) << sql;
    return st->columnText(0);
  }

  static bool tableExists(Database& db, const std::string& name) {
    auto st = db.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1");
    EXPECT_TRUE(st.ok());
    st->bind(1, name);
    auto row = st->step();
    EXPECT_TRUE(row.ok() && *row);
    return st->columnInt(0) == 1;
  }

  std::string dir_;
};

TEST_F(SqliteTest, OpenCreatesFileWithMode0600AndParentDirectories) {
  const std::string path = dir_ + "/a/b/berth.db";
  auto db = Database::open(path);
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_EQ((*db)->path(), path);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(::stat((dir_ + "/a/b").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_EQ(::stat((dir_ + "/a").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  // The WAL file SQLite makes takes the database file's mode.
  ASSERT_TRUE((*db)->exec("CREATE TABLE t(x)").ok());
  ASSERT_EQ(::stat((path + "-wal").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u);
}

TEST_F(SqliteTest, OpenSetsWalForeignKeysAndSynchronous) {
  auto db = openDb();
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(queryText(*db, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(queryInt(*db, "PRAGMA foreign_keys"), 1);
  EXPECT_EQ(queryInt(*db, "PRAGMA synchronous"), 2);  // FULL
}

TEST_F(SqliteTest, OpenRelativePathInCurrentDirectory) {
  char cwd[4096];
  ASSERT_NE(getcwd(cwd, sizeof cwd), nullptr);
  ASSERT_EQ(chdir(dir_.c_str()), 0);
  auto db = Database::open("rel.db");
  ASSERT_EQ(chdir(cwd), 0);
  ASSERT_TRUE(db.ok()) << db.status();
  struct stat st {};
  ASSERT_EQ(::stat((dir_ + "/rel.db").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST_F(SqliteTest, OpenFailureNamesThePath) {
  ASSERT_TRUE(fs::writeFileAtomic(dir_ + "/file", "x").ok());
  auto db = Database::open(dir_ + "/file/sub/berth.db");
  ASSERT_FALSE(db.ok());
  EXPECT_THAT(std::string(db.status().message()), HasSubstr(dir_ + "/file/sub/berth.db"));

  ASSERT_TRUE(fs::writeFileAtomic(dir_ + "/garbage.db", std::string(8192, 'g')).ok());
  auto bad = Database::open(dir_ + "/garbage.db");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss) << bad.status();
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("garbage.db"));
}

TEST_F(SqliteTest, MemoryDatabase) {
  auto db = Database::open(":memory:");
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_EQ(queryInt(**db, "PRAGMA foreign_keys"), 1);
  ASSERT_TRUE((*db)->exec("CREATE TABLE t(x); INSERT INTO t VALUES(7)").ok());
  EXPECT_EQ(queryInt(**db, "SELECT x FROM t"), 7);
  EXPECT_FALSE(fs::exists(":memory:"));
}

TEST_F(SqliteTest, ExecRunsSeveralStatements) {
  auto db = openDb();
  ASSERT_TRUE(db->exec("CREATE TABLE t(x INTEGER); INSERT INTO t VALUES(1);"
                       " INSERT INTO t VALUES(2)")
                  .ok());
  EXPECT_EQ(queryInt(*db, "SELECT sum(x) FROM t"), 3);
  EXPECT_EQ(db->changes(), 1);
}

TEST_F(SqliteTest, PrepareBindStepColumns) {
  auto db = openDb();
  ASSERT_TRUE(db->exec("CREATE TABLE t(id INTEGER PRIMARY KEY, s TEXT, n INTEGER)").ok());
  auto ins = db->prepare("INSERT INTO t(s, n) VALUES(?1, ?2)");
  ASSERT_TRUE(ins.ok()) << ins.status();
  const std::string with_nul("a\0b\0", 4);
  const std::vector<int64_t> ints = {std::numeric_limits<int64_t>::min(),
                                     std::numeric_limits<int64_t>::max(), 0, -1};
  for (int64_t v : ints) {
    ins->reset();
    ins->bind(1, with_nul).bind(2, v);
    ASSERT_TRUE(ins->run().ok());
    EXPECT_EQ(db->changes(), 1);
  }
  EXPECT_EQ(db->lastInsertRowid(), 4);
  ins->reset();
  ins->bindNull(1).bindNull(2);
  ASSERT_TRUE(ins->run().ok());
  ins->reset();
  ins->bind(1, std::string_view()).bind(2, int64_t{5});  // empty, not NULL
  ASSERT_TRUE(ins->run().ok());

  auto sel = db->prepare("SELECT s, n, typeof(s) FROM t ORDER BY id");
  ASSERT_TRUE(sel.ok());
  for (int64_t v : ints) {
    auto row = sel->step();
    ASSERT_TRUE(row.ok() && *row);
    EXPECT_EQ(sel->columnText(0), with_nul);
    EXPECT_EQ(sel->columnText(0).size(), 4u);
    EXPECT_EQ(sel->columnInt(1), v);
    EXPECT_FALSE(sel->columnIsNull(0));
  }
  auto row = sel->step();
  ASSERT_TRUE(row.ok() && *row);
  EXPECT_TRUE(sel->columnIsNull(0));
  EXPECT_TRUE(sel->columnIsNull(1));
  EXPECT_EQ(sel->columnText(0), "");
  EXPECT_EQ(sel->columnInt(1), 0);
  row = sel->step();
  ASSERT_TRUE(row.ok() && *row);
  EXPECT_FALSE(sel->columnIsNull(0));
  EXPECT_EQ(sel->columnText(2), "text");
  row = sel->step();
  ASSERT_TRUE(row.ok());
  EXPECT_FALSE(*row);
}

TEST_F(SqliteTest, StatementMoves) {
  auto db = openDb();
  auto st = db->prepare("SELECT 42");
  ASSERT_TRUE(st.ok());
  Statement moved(std::move(*st));
  auto row = moved.step();
  ASSERT_TRUE(row.ok() && *row);
  EXPECT_EQ(moved.columnInt(0), 42);
}

TEST_F(SqliteTest, BindErrorReportedByStep) {
  auto db = openDb();
  auto st = db->prepare("SELECT ?1");
  ASSERT_TRUE(st.ok());
  st->bind(5, int64_t{1});  // out of range
  auto row = st->step();
  ASSERT_FALSE(row.ok());
  EXPECT_THAT(std::string(row.status().message()), HasSubstr("bind parameter 5"));
  EXPECT_THAT(std::string(row.status().message()), HasSubstr("SELECT ?1"));
  st->reset();
  st->bind(1, int64_t{3});
  row = st->step();
  ASSERT_TRUE(row.ok() && *row);
  EXPECT_EQ(st->columnInt(0), 3);
}

TEST_F(SqliteTest, ConstraintViolations) {
  auto db = openDb();
  ASSERT_TRUE(db->exec("CREATE TABLE p(id TEXT PRIMARY KEY, u TEXT UNIQUE, n TEXT NOT NULL);"
                       "CREATE TABLE c(pid TEXT REFERENCES p(id));"
                       "INSERT INTO p VALUES('a', 'x', 'n')")
                  .ok());
  auto ins = db->prepare("INSERT INTO p VALUES(?1, ?2, 'n')");
  ASSERT_TRUE(ins.ok());
  ins->bind(1, "a").bind(2, "y");
  Status st = ins->run();
  EXPECT_EQ(st.code(), absl::StatusCode::kAlreadyExists) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("INSERT INTO p"));
  ins->reset();
  ins->bind(1, "b").bind(2, "x");
  EXPECT_EQ(ins->run().code(), absl::StatusCode::kAlreadyExists);

  st = db->exec("INSERT INTO p VALUES('a', 'z', 'n')");
  EXPECT_EQ(st.code(), absl::StatusCode::kAlreadyExists) << st;
  st = db->exec("INSERT INTO p VALUES('q', 'q', NULL)");
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  st = db->exec("INSERT INTO c VALUES('nosuch')");  // foreign keys are on
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_EQ(queryInt(*db, "SELECT count(*) FROM p"), 1);
}

TEST_F(SqliteTest, SyntaxErrorsContainTheSql) {
  auto db = openDb();
  auto st = db->prepare("SELEC nothing FROM nowhere");
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.status().message()), HasSubstr("SELEC nothing FROM nowhere"));
  EXPECT_THAT(std::string(st.status().message()), HasSubstr("syntax error"));

  Status ex = db->exec("CREATE TABLE ok(x); CREAT TABLE bad(y)");
  ASSERT_FALSE(ex.ok());
  EXPECT_THAT(std::string(ex.message()), HasSubstr("CREAT TABLE bad(y)"));
  EXPECT_THAT(std::string(ex.message()), HasSubstr("syntax error"));

  auto missing = db->prepare("SELECT * FROM nosuchtable");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("no such table: nosuchtable"));
}

TEST_F(SqliteTest, PrepareRejectsEmptyAndMultipleStatements) {
  auto db = openDb();
  EXPECT_EQ(db->prepare("  ").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(db->prepare("SELECT 1; SELECT 2").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(db->prepare("SELECT 1;  \n").ok());
}

TEST_F(SqliteTest, TransactionRollsBackOnDestruction) {
  auto db = openDb();
  ASSERT_TRUE(db->exec("CREATE TABLE t(x)").ok());
  {
    Transaction tx(*db);
    ASSERT_TRUE(tx.status().ok()) << tx.status();
    ASSERT_TRUE(db->exec("INSERT INTO t VALUES(1)").ok());
    EXPECT_EQ(queryInt(*db, "SELECT count(*) FROM t"), 1);
  }
  EXPECT_EQ(queryInt(*db, "SELECT count(*) FROM t"), 0);
  // The connection is usable for a new transaction afterwards.
  Transaction tx(*db);
  ASSERT_TRUE(tx.status().ok()) << tx.status();
}

TEST_F(SqliteTest, TransactionCommit) {
  auto db = openDb();
  ASSERT_TRUE(db->exec("CREATE TABLE t(x)").ok());
  {
    Transaction tx(*db);
    ASSERT_TRUE(db->exec("INSERT INTO t VALUES(1); INSERT INTO t VALUES(2)").ok());
    ASSERT_TRUE(tx.commit().ok());
    EXPECT_EQ(tx.commit().code(), absl::StatusCode::kFailedPrecondition);
  }
  EXPECT_EQ(queryInt(*db, "SELECT count(*) FROM t"), 2);
  // Another connection sees the committed rows.
  auto other = openDb();
  EXPECT_EQ(queryInt(*other, "SELECT count(*) FROM t"), 2);
}

TEST_F(SqliteTest, BeginImmediateBusyIsUnavailable) {
  auto a = openDb("berth.db", 10000);
  auto b = openDb("berth.db", 50);
  ASSERT_TRUE(a->exec("CREATE TABLE t(x)").ok());
  Transaction holder(*a);
  ASSERT_TRUE(holder.status().ok());
  ASSERT_TRUE(a->exec("INSERT INTO t VALUES(1)").ok());
  {
    Transaction tx(*b);
    EXPECT_EQ(tx.status().code(), absl::StatusCode::kUnavailable) << tx.status();
    Status commit = tx.commit();
    EXPECT_EQ(commit.code(), absl::StatusCode::kUnavailable);
  }
  // Readers are not blocked by the writer in WAL mode, and see the last commit.
  EXPECT_EQ(queryInt(*b, "SELECT count(*) FROM t"), 0);
  ASSERT_TRUE(holder.commit().ok());
  Transaction tx(*b);
  EXPECT_TRUE(tx.status().ok()) << tx.status();
  EXPECT_EQ(queryInt(*b, "SELECT count(*) FROM t"), 1);
}

TEST_F(SqliteTest, MigrateAppliesStepsOnce) {
  auto db = openDb();
  std::vector<std::string> steps = {"CREATE TABLE a(x)", "INSERT INTO a VALUES(1)"};
  ASSERT_TRUE(db->migrate("comp", steps).ok());
  EXPECT_EQ(queryInt(*db, "SELECT count(*) FROM a"), 1);
  EXPECT_EQ(queryInt(*db, "SELECT version FROM schema_versions WHERE component = 'comp'"), 2);
  // Re-running is a no-op (the INSERT is not repeated).
  ASSERT_TRUE(db->migrate("comp", steps).ok());
  EXPECT_EQ(queryInt(*db, "SELECT count(*) FROM a"), 1);
  // A new step runs alone.
  steps.push_back("INSERT INTO a VALUES(2)");
  ASSERT_TRUE(db->migrate("comp", steps).ok());
  EXPECT_EQ(queryInt(*db, "SELECT count(*) FROM a"), 2);
  EXPECT_EQ(queryInt(*db, "SELECT sum(x) FROM a"), 3);
  EXPECT_EQ(queryInt(*db, "SELECT version FROM schema_versions WHERE component = 'comp'"), 3);
  // Components are independent.
  ASSERT_TRUE(db->migrate("other", {"CREATE TABLE b(y)"}).ok());
  EXPECT_EQ(queryInt(*db, "SELECT version FROM schema_versions WHERE component = 'other'"), 1);
  EXPECT_EQ(queryInt(*db, "SELECT version FROM schema_versions WHERE component = 'comp'"), 3);
  // And the versions persist across connections.
  db.reset();
  auto again = openDb();
  ASSERT_TRUE(again->migrate("comp", steps).ok());
  EXPECT_EQ(queryInt(*again, "SELECT count(*) FROM a"), 2);
}

TEST_F(SqliteTest, MigrateFailingStepLeavesDatabaseUnchanged) {
  auto db = openDb();
  ASSERT_TRUE(db->migrate("comp", {"CREATE TABLE a(x)"}).ok());
  Status st = db->migrate("comp", {"CREATE TABLE a(x)", "CREATE TABLE b(y)",
                                   "INSERT INTO a VALUES(1); SELEC oops"});
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("step 3"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("comp"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("SELEC oops"));
  EXPECT_FALSE(tableExists(*db, "b"));
  EXPECT_EQ(queryInt(*db, "SELECT count(*) FROM a"), 0);
  EXPECT_EQ(queryInt(*db, "SELECT version FROM schema_versions WHERE component = 'comp'"), 1);

  // On a fresh database the failed first migration leaves no tables at all.
  auto fresh = openDb("fresh.db");
  ASSERT_FALSE(fresh->migrate("comp", {"CREATE TABLE a(x)", "bogus"}).ok());
  EXPECT_FALSE(tableExists(*fresh, "a"));
  EXPECT_FALSE(tableExists(*fresh, "schema_versions"));
}

TEST_F(SqliteTest, MigrateRefusesNewerDatabase) {
  auto db = openDb();
  ASSERT_TRUE(db->migrate("comp", {"CREATE TABLE a(x)", "CREATE TABLE b(x)"}).ok());
  Status st = db->migrate("comp", {"CREATE TABLE a(x)"});
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("downgrade berth or use a fresh --root"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("version 2"));
  EXPECT_EQ(queryInt(*db, "SELECT version FROM schema_versions WHERE component = 'comp'"), 2);
}

TEST_F(SqliteTest, MigrateWaitsForAnotherWriter) {
  auto a = openDb("berth.db", 10000);
  auto b = openDb("berth.db", 50);
  Transaction holder(*a);
  ASSERT_TRUE(holder.status().ok());
  Status st = b->migrate("comp", {"CREATE TABLE a(x)"});
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
  ASSERT_TRUE(holder.commit().ok());
  EXPECT_TRUE(b->migrate("comp", {"CREATE TABLE a(x)"}).ok());
}

// One connection shared by two components on two threads: a statement of thread B
// waits for thread A's open transaction instead of silently joining it, so A's
// rollback does not take B's write with it.
TEST_F(SqliteTest, SharedConnectionStatementsWaitForAnotherThreadsTransaction) {
  auto db = openDb();
  ASSERT_TRUE(db->exec("CREATE TABLE t(x)").ok());
  std::atomic<bool> b_done{false};
  std::thread b;
  {
    Transaction tx(*db);
    ASSERT_TRUE(tx.status().ok()) << tx.status();
    ASSERT_TRUE(db->exec("INSERT INTO t VALUES('a')").ok());
    b = std::thread([&] {
      EXPECT_TRUE(db->exec("INSERT INTO t VALUES('b')").ok());
      b_done = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_FALSE(b_done) << "B's statement ran inside A's transaction";
  }  // A rolls back
  b.join();
  EXPECT_EQ(queryText(*db, "SELECT group_concat(x) FROM t"), "b");
}

}  // namespace
}  // namespace berth
