// A thin RAII wrapper over SQLite's C API (https://sqlite.org/c3ref/intro.html) for
// berthd's metadata database (/var/lib/berth/berth.db, DESIGN.md "State and crash
// safety"): WAL journal, foreign keys on, a busy timeout so several processes (berthd,
// the image CLI) can share one file, and every multi-record change in one transaction.
//
// Each component owns its tables and migrates them with `migrate(component, steps)`,
// which records the applied step count in the table `schema_versions`.
//
// Thread-safety: a Database is one SQLite connection that several components and
// threads share (the image store, the snapshotter, later the pod store). SQLite
// transactions belong to the connection, not to a thread, so the connection carries a
// recursive mutex: a Transaction holds it from BEGIN to COMMIT/ROLLBACK, and every
// step()/exec() takes it, so another thread's statements wait for the transaction
// instead of joining it. A Transaction and the Statements run inside it stay on one
// thread. Iterating a SELECT is not atomic across step() calls outside a Transaction.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace berth {

class Database;

// A prepared statement. Bind parameters are numbered from 1; columns from 0.
class Statement {
 public:
  ~Statement();
  Statement(Statement&&) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;

  // Binders return *this so calls chain. Errors are kept and returned by step().
  Statement& bind(int index, std::string_view text);
  Statement& bind(int index, int64_t value);
  Statement& bindNull(int index);

  // Runs one step. Returns true when a row is available (read it with the column
  // accessors), false when the statement is done. Errors: the SQLite message with the
  // SQL text; SQLITE_BUSY after the busy timeout -> Unavailable, SQLITE_CONSTRAINT ->
  // AlreadyExists/FailedPrecondition, SQLITE_FULL -> ResourceExhausted.
  StatusOr<bool> step();
  // step() until done, for statements without results.
  Status run();

  std::string columnText(int index) const;  // "" for NULL
  int64_t columnInt(int index) const;       // 0 for NULL
  bool columnIsNull(int index) const;

  // Resets for another execution with new bindings.
  void reset();

 private:
  friend class Database;
  Statement(sqlite3* db, std::recursive_mutex* mu, sqlite3_stmt* stmt, std::string sql);
  sqlite3* db_;
  std::recursive_mutex* mu_;  // the connection's; held during each step
  sqlite3_stmt* stmt_;
  std::string sql_;
  Status bind_error_;
};

class Database {
 public:
  // Opens (creating when missing, with mode 0600 and its parent directory 0700) the
  // database at `path`, sets journal_mode=WAL, synchronous=FULL, foreign_keys=ON and a
  // busy timeout of `busy_timeout_ms`. ":memory:" opens a private in-memory database.
  // Errors: the SQLite message naming the path (e.g. "open database
  // \"/var/lib/berth/berth.db\": unable to open database file").
  static StatusOr<std::unique_ptr<Database>> open(const std::string& path,
                                                  int busy_timeout_ms = 10000);
  ~Database();

  // Runs one or more ';'-separated statements without parameters.
  Status exec(std::string_view sql);

  // Prepares one statement. Errors: syntax errors with the SQL text.
  StatusOr<Statement> prepare(std::string_view sql);

  // Rowid of the last INSERT on this connection.
  int64_t lastInsertRowid() const;
  // Rows changed by the last statement on this connection.
  int changes() const;

  // Brings `component`'s tables up to date: runs steps[n..] (each a SQL script) in
  // one IMMEDIATE transaction, where n is the number of steps already applied, and
  // records the new count. Errors: the failing step's index and SQL error; the
  // database is left as it was. A database newer than `steps` (more applied steps
  // than known) is FailedPrecondition: "downgrade berth or use a fresh --root".
  Status migrate(std::string_view component, const std::vector<std::string>& steps);

  const std::string& path() const { return path_; }
  sqlite3* handle() const { return db_; }

 private:
  friend class Transaction;
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  mutable std::recursive_mutex mu_;  // see "Thread-safety" above
  std::string path_;
};

// BEGIN IMMEDIATE on construction (taking the write lock at once, so a busy
// database fails here rather than half-way), ROLLBACK on destruction unless commit()
// succeeded. Errors from begin are reported by status() / commit().
class Transaction {
 public:
  explicit Transaction(Database& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // The result of BEGIN.
  const Status& status() const { return begin_; }
  // COMMIT. Errors: the BEGIN error, or the COMMIT error (then rolled back).
  Status commit();

 private:
  Database& db_;
  std::unique_lock<std::recursive_mutex> lock_;  // the connection, BEGIN to the end
  Status begin_;
  bool done_ = false;
};

}  // namespace berth
