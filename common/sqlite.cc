#include "common/sqlite.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"

namespace berth {
namespace {

Status sqliteError(sqlite3* db, int rc, std::string_view what) {
  std::string msg = strCat(what, ": ", db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(strCat(msg, " (database busy; retry)"));
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return absl::AlreadyExistsError(msg);
      }
      return absl::FailedPreconditionError(msg);
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(strCat(msg, " (disk full)"));
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return absl::PermissionDeniedError(msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(msg);
    default:
      return absl::InternalError(msg);
  }
}

}  // namespace

Statement::Statement(sqlite3* db, std::recursive_mutex* mu, sqlite3_stmt* stmt,
                     std::string sql)
    : db_(db), mu_(mu), stmt_(stmt), sql_(std::move(sql)) {}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_), mu_(other.mu_), stmt_(other.stmt_), sql_(std::move(other.sql_)),
      bind_error_(std::move(other.bind_error_)) {
  other.stmt_ = nullptr;
}

Statement::~Statement() {
  if (stmt_ != nullptr) sqlite3_finalize(stmt_);
}

Statement& Statement::bind(int index, std::string_view text) {
  // A default-constructed string_view has data() == nullptr, which SQLite would bind
  // as NULL rather than as the empty string.
  int rc = sqlite3_bind_text(stmt_, index, text.data() != nullptr ? text.data() : "",
                             static_cast<int>(text.size()), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK && bind_error_.ok()) {
    bind_error_ = sqliteError(db_, rc, strCat("bind parameter ", index, " of \"", sql_, "\""));
  }
  return *this;
}

Statement& Statement::bind(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK && bind_error_.ok()) {
    bind_error_ = sqliteError(db_, rc, strCat("bind parameter ", index, " of \"", sql_, "\""));
  }
  return *this;
}

Statement& Statement::bindNull(int index) {
  int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK && bind_error_.ok()) {
    bind_error_ = sqliteError(db_, rc, strCat("bind parameter ", index, " of \"", sql_, "\""));
  }
  return *this;
}

StatusOr<bool> Statement::step() {
  if (!bind_error_.ok()) return bind_error_;
  std::lock_guard<std::recursive_mutex> lock(*mu_);
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return sqliteError(db_, sqlite3_extended_errcode(db_), strCat("run \"", sql_, "\""));
}

Status Statement::run() {
  for (;;) {
    ASSIGN_OR_RETURN(bool row, step());
    if (!row) return absl::OkStatus();
  }
}

std::string Statement::columnText(int index) const {
  const unsigned char* text = sqlite3_column_text(stmt_, index);
  if (text == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, index)));
}

int64_t Statement::columnInt(int index) const { return sqlite3_column_int64(stmt_, index); }

bool Statement::columnIsNull(int index) const {
  return sqlite3_column_type(stmt_, index) == SQLITE_NULL;
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_error_ = absl::OkStatus();
}

StatusOr<std::unique_ptr<Database>> Database::open(const std::string& path,
                                                   int busy_timeout_ms) {
  const std::string what = strCat("open database \"", path, "\"");
  if (path != ":memory:") {
    size_t slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "" : path.substr(0, slash);
    if (!dir.empty()) RETURN_IF_ERROR_CTX(fs::mkdirAll(dir, 0700), what);
    // Create the file ourselves so it gets mode 0600 whatever the umask.
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return withContext(lastErrnoError(strCat("open \"", path, "\"")), what);
    ::close(fd);
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                               SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW,
                           nullptr);
  if (rc != SQLITE_OK) {
    Status st = sqliteError(db, rc, what);
    sqlite3_close(db);
    return st;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, busy_timeout_ms);
  std::unique_ptr<Database> database(new Database(db, path));
  const char* pragmas = path == ":memory:"
                            ? "PRAGMA foreign_keys=ON;"
                            : "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                              " PRAGMA foreign_keys=ON;";
  RETURN_IF_ERROR_CTX(database->exec(pragmas), what);
  return database;
}

Database::~Database() { sqlite3_close_v2(db_); }

Status Database::exec(std::string_view sql) {
  std::string text(sql);
  std::lock_guard<std::recursive_mutex> lock(mu_);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    Status st = sqliteError(nullptr, sqlite3_extended_errcode(db_), "");
    return Status(st.code(), strCat("run \"", text, "\": ", msg));
  }
  return absl::OkStatus();
}

StatusOr<Statement> Database::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, &tail);
  if (rc != SQLITE_OK) {
    return sqliteError(db_, rc, strCat("prepare \"", sql, "\""));
  }
  // An empty statement compiles to nullptr; text after the first statement would be
  // silently ignored. Both are programming errors.
  if (stmt == nullptr) return invalidArgument("prepare \"", sql, "\": no SQL statement");
  if (!trim(sql.substr(static_cast<size_t>(tail - sql.data()))).empty()) {
    sqlite3_finalize(stmt);
    return invalidArgument("prepare \"", sql, "\": more than one SQL statement; use exec()");
  }
  return Statement(db_, &mu_, stmt, std::string(sql));
}

int64_t Database::lastInsertRowid() const { return sqlite3_last_insert_rowid(db_); }

int Database::changes() const { return sqlite3_changes(db_); }

Status Database::migrate(std::string_view component, const std::vector<std::string>& steps) {
  const std::string what = strCat("migrate schema of ", component, " in \"", path_, "\"");
  Transaction tx(*this);
  RETURN_IF_ERROR_CTX(tx.status(), what);
  RETURN_IF_ERROR_CTX(exec("CREATE TABLE IF NOT EXISTS schema_versions ("
                           " component TEXT PRIMARY KEY, version INTEGER NOT NULL)"),
                      what);
  ASSIGN_OR_RETURN(Statement get,
                   prepare("SELECT version FROM schema_versions WHERE component = ?1"));
  get.bind(1, component);
  ASSIGN_OR_RETURN(bool row, get.step());
  int64_t applied = row ? get.columnInt(0) : 0;
  get.reset();  // no statement left pending at COMMIT
  if (applied > static_cast<int64_t>(steps.size())) {
    return absl::FailedPreconditionError(
        strCat(what, ": the database is at version ", applied, " but this berth knows only ",
               steps.size(), "; downgrade berth or use a fresh --root"));
  }
  if (row && applied == static_cast<int64_t>(steps.size())) return tx.commit();  // up to date
  for (size_t i = static_cast<size_t>(applied); i < steps.size(); ++i) {
    RETURN_IF_ERROR_CTX(exec(steps[i]), strCat(what, ": step ", i + 1));
  }
  ASSIGN_OR_RETURN(Statement put,
                   prepare("INSERT INTO schema_versions(component, version) VALUES(?1, ?2)"
                           " ON CONFLICT(component) DO UPDATE SET version = excluded.version"));
  put.bind(1, component).bind(2, static_cast<int64_t>(steps.size()));
  RETURN_IF_ERROR_CTX(put.run(), what);
  return tx.commit();
}

Transaction::Transaction(Database& db) : db_(db), lock_(db.mu_) {
  begin_ = db_.exec("BEGIN IMMEDIATE");
  if (!begin_.ok()) done_ = true;
}

Transaction::~Transaction() {
  if (!done_) (void)db_.exec("ROLLBACK");
}

Status Transaction::commit() {
  if (!begin_.ok()) return begin_;
  if (done_) return absl::FailedPreconditionError("transaction already finished");
  Status st = db_.exec("COMMIT");
  if (!st.ok()) {
    (void)db_.exec("ROLLBACK");
  }
  done_ = true;
  return st;
}

}  // namespace berth
