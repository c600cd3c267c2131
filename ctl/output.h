// berthctl's output: `-o json|yaml|table` as crictl prints them.
//
// - JSON is the protobuf JSON mapping as crictl's protojson prints it: lowerCamelCase
//   field names (crictl uses protojson's default names, e.g. "repoTags",
//   "runtimeHandler"), fields at their default values included, 64-bit integers as
//   strings, enums by name, two-space indentation, fields in proto order.
// - YAML is that JSON converted (sigs.k8s.io/yaml's JSONToYAML, as crictl does): keys
//   sorted, strings that would read back as another type quoted.
// - Tables are crictl's column layouts: left-aligned columns at least 20 wide and
//   3 spaces apart; IDs truncated to 13 characters (after "sha256:" for images);
//   sizes in decimal units with 3 significant digits ("1.46MB"); times as "2 hours
//   ago" (Docker's HumanDuration).
// - inspect/inspectp/inspecti/info print {"status": <message>, "info": {<key>:
//   <value parsed as JSON when it is a JSON object, else the string>}}.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <google/protobuf/message.h>
#include <nlohmann/json.hpp>

#include "common/status.h"
#include "cri/proto/api.pb.h"

namespace berth::ctl {

using OrderedJson = nlohmann::ordered_json;

enum class OutputFormat { kTable, kJson, kYaml };

// "table" / "json" / "yaml" (and "" -> `fallback`). Errors: InvalidArgument naming the
// value and the choices.
StatusOr<OutputFormat> parseOutputFormat(const std::string& text,
                                         OutputFormat fallback = OutputFormat::kTable);

// The message as crictl's JSON (see above), as a JSON value. Errors: Internal when
// protobuf refuses to serialise (cannot happen for CRI messages).
StatusOr<OrderedJson> messageToJson(const google::protobuf::Message& message);

// Renders a JSON value as indented JSON (no trailing newline).
std::string renderJson(const OrderedJson& value);

// Renders a JSON value as YAML (keys sorted, no trailing newline).
std::string renderYaml(const OrderedJson& value);

// renderJson / renderYaml of `value` per `format` (kTable is treated as JSON).
std::string render(const OrderedJson& value, OutputFormat format);

// {"status": messageToJson(status), "info": {...}} (info omitted when empty); a value of
// `info` that starts with "{" and parses as JSON is embedded as an object.
StatusOr<OrderedJson> statusWithInfo(const google::protobuf::Message& status,
                                     const google::protobuf::Map<std::string, std::string>& info);

// A crictl-style table: header and rows of cells; every column but the last is padded
// to max(20, widest cell + 3).
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void addRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  // The table, each line ending in '\n'.
  std::string render() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// The first 13 characters of `id` after removing `prefix` (crictl's getTruncatedID).
std::string truncateId(const std::string& id, const std::string& prefix = "");

// Docker's HumanSizeWithPrecision(bytes, 3): "742B", "4.26kB", "1.46MB".
std::string humanSize(uint64_t bytes);

// Docker's HumanDuration + " ago" for a time `ns_ago` nanoseconds in the past:
// "Less than a second ago", "5 seconds ago", "About a minute ago", "3 hours ago",
// "2 days ago".
std::string humanAgo(int64_t ns_ago);

// crictl's state words: "Ready" / "NotReady"; "Created" / "Running" / "Exited" /
// "Unknown".
std::string podStateName(runtime::v1::PodSandboxState state);
std::string containerStateName(runtime::v1::ContainerState state);

// The `images` table (IMAGE TAG IMAGE ID SIZE; with `digests`, DIGEST after TAG): one
// row per repo tag, "<none>" tags for images known by digest only.
std::string imagesTable(const runtime::v1::ListImagesResponse& images, bool digests,
                        bool no_trunc);

// The `pods` table (POD ID CREATED STATE NAME NAMESPACE ATTEMPT RUNTIME); `now_ns` is
// the current time in ns since the epoch.
std::string podsTable(const std::vector<runtime::v1::PodSandbox>& pods, int64_t now_ns,
                      bool no_trunc);

// The `ps` table (CONTAINER IMAGE CREATED STATE NAME ATTEMPT POD ID POD); the POD column
// is the io.kubernetes.pod.name label ("unknown" without it).
std::string containersTable(const std::vector<runtime::v1::Container>& containers,
                            int64_t now_ns, bool no_trunc);

// The `stats` table (CONTAINER NAME CPU % MEM DISK INODES).
std::string containerStatsTable(const runtime::v1::ListContainerStatsResponse& stats);

// The `statsp` table (POD POD ID CPU % MEM).
std::string podStatsTable(const runtime::v1::ListPodSandboxStatsResponse& stats);

}  // namespace berth::ctl
