// buildSandboxFiles and friends (pod_files.h).
#include "cri/pod_files.h"

#include <cctype>

#include "common/fs.h"
#include "common/strings.h"

namespace berth::cri {
namespace {

namespace v1 = ::runtime::v1;

// The localhost lines of kubelet's managed hosts file.
constexpr char kHostsHeader[] =
    "# berth-managed hosts file.\n"
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "fe00::0\tip6-mcastprefix\n"
    "fe00::1\tip6-allnodes\n"
    "fe00::2\tip6-allrouters\n";

bool hasSpace(const std::string& s) {
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) return true;
  }
  return false;
}

Status checkEntries(const google::protobuf::RepeatedPtrField<std::string>& list,
                    const char* name) {
  for (int i = 0; i < list.size(); ++i) {
    const std::string& entry = list.Get(i);
    if (entry.empty()) {
      return invalidArgument("PodSandboxConfig.dns_config.", name, "[", i, "]: empty");
    }
    if (hasSpace(entry)) {
      return invalidArgument("PodSandboxConfig.dns_config.", name, "[", i, "]: \"", entry,
                             "\" contains whitespace");
    }
  }
  return Status();
}

Status checkHostname(const std::string& hostname, const char* field) {
  bool ok = !hostname.empty() && hostname.size() <= 64;
  for (char c : hostname) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') {
      ok = false;
    }
  }
  if (!ok) {
    return invalidArgument(field, ": \"", hostname,
                           "\" is not a valid host name (1..64 letters, digits, '-', '.', "
                           "'_')");
  }
  return Status();
}

}  // namespace

StatusOr<std::string> resolvConfFromDns(const v1::DNSConfig& dns) {
  RETURN_IF_ERROR(checkEntries(dns.servers(), "servers"));
  RETURN_IF_ERROR(checkEntries(dns.searches(), "searches"));
  RETURN_IF_ERROR(checkEntries(dns.options(), "options"));
  std::string out;
  if (dns.searches_size() > 0) {
    out += "search " +
           joinStrings(std::vector<std::string>(dns.searches().begin(), dns.searches().end()),
                       " ") +
           "\n";
  }
  for (const std::string& server : dns.servers()) out += "nameserver " + server + "\n";
  if (dns.options_size() > 0) {
    out += "options " +
           joinStrings(std::vector<std::string>(dns.options().begin(), dns.options().end()),
                       " ") +
           "\n";
  }
  return out;
}

StatusOr<SandboxFiles> buildSandboxFiles(const v1::PodSandboxConfig& config,
                                         const SandboxFilesOptions& options) {
  const bool host_network =
      config.linux().security_context().namespace_options().network() == v1::NODE;
  SandboxFiles files;

  // An empty hostname means the node's, in every network mode (what containerd and
  // CRI-O do; kubelet always sets one for ordinary pods).
  if (!config.hostname().empty()) {
    RETURN_IF_ERROR(checkHostname(config.hostname(), "PodSandboxConfig.hostname"));
    files.hostname = config.hostname();
  } else {
    if (options.node_hostname.empty()) {
      return invalidArgument("PodSandboxConfig.hostname is empty and the node's hostname is "
                             "unknown; set the pod's hostname");
    }
    files.hostname = options.node_hostname;
  }

  if (host_network) {
    ASSIGN_OR_RETURN(files.hosts, fs::readFile(options.host_hosts));
  } else {
    files.hosts = kHostsHeader;
    for (const std::string& ip : options.pod_ips) {
      if (!ip.empty()) files.hosts += ip + "\t" + files.hostname + "\n";
    }
  }

  ASSIGN_OR_RETURN(files.resolv_conf, resolvConfFromDns(config.dns_config()));
  if (files.resolv_conf.empty()) {
    ASSIGN_OR_RETURN(files.resolv_conf, fs::readFile(options.host_resolv_conf));
  }
  return files;
}

StatusOr<SandboxFilePaths> writeSandboxFiles(const SandboxFiles& files, const std::string& dir) {
  RETURN_IF_ERROR(fs::mkdirAll(dir, 0755));
  SandboxFilePaths paths{fs::join(dir, "hostname"), fs::join(dir, "hosts"),
                         fs::join(dir, "resolv.conf")};
  RETURN_IF_ERROR(fs::writeFileAtomic(paths.hostname, files.hostname + "\n", 0644,
                                      fs::Durability::kVolatile));
  RETURN_IF_ERROR(fs::writeFileAtomic(paths.hosts, files.hosts, 0644, fs::Durability::kVolatile));
  RETURN_IF_ERROR(fs::writeFileAtomic(paths.resolv_conf, files.resolv_conf, 0644,
                                      fs::Durability::kVolatile));
  return paths;
}

}  // namespace berth::cri
