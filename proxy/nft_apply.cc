#include "proxy/nft_apply.h"

#include <array>

namespace berth::proxy {

Status checkTableName(std::string_view family, std::string_view name) {
  static constexpr std::array<std::string_view, 6> kFamilies = {"ip",  "ip6",    "inet",
                                                                "arp", "bridge", "netdev"};
  bool family_ok = false;
  for (std::string_view f : kFamilies) family_ok = family_ok || f == family;
  if (!family_ok) {
    return invalidArgument("nftables family \"", family,
                           "\" is not one of ip, ip6, inet, arp, bridge, netdev");
  }
  bool name_ok = !name.empty() && name.size() <= 255;
  for (char c : name) {
    name_ok = name_ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                          c == '_' || c == '-' || c == '.');
  }
  if (!name_ok) {
    return invalidArgument("nftables table name \"", name,
                           "\" must be 1-255 letters, digits, '_', '-' or '.'");
  }
  return absl::OkStatus();
}

StatusOr<std::unique_ptr<NftablesApplier>> NftablesApplier::create() {
  ASSIGN_OR_RETURN(nft::Context ctx, nft::Context::create());
  return std::unique_ptr<NftablesApplier>(new NftablesApplier(std::move(ctx)));
}

Status NftablesApplier::apply(std::string_view script, std::string_view what) {
  std::lock_guard<std::mutex> lock(mu_);
  return ctx_.run(script, what);
}

Status NftablesApplier::check(std::string_view script, std::string_view what) {
  std::lock_guard<std::mutex> lock(mu_);
  return ctx_.check(script, what);
}

StatusOr<bool> NftablesApplier::tableExists(std::string_view family, std::string_view name) {
  RETURN_IF_ERROR(checkTableName(family, name));
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(std::string tables, ctx_.list(strCat("list tables ", family)));
  std::string wanted = strCat("table ", family, " ", name);
  for (const std::string& line : split(tables, '\n')) {
    if (trim(line) == wanted) return true;
  }
  return false;
}

StatusOr<std::string> NftablesApplier::listTable(std::string_view family, std::string_view name) {
  RETURN_IF_ERROR(checkTableName(family, name));
  std::lock_guard<std::mutex> lock(mu_);
  StatusOr<std::string> text = ctx_.list(strCat("list table ", family, " ", name));
  if (absl::IsNotFound(text.status())) return std::string();
  return text;
}

Status NftablesApplier::deleteTable(std::string_view family, std::string_view name) {
  ASSIGN_OR_RETURN(bool exists, tableExists(family, name));
  if (!exists) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mu_);
  // nft 1.0.6 has no "destroy table": someone else may delete it between the check and
  // here, which is what we wanted anyway.
  Status status = ctx_.run(strCat("delete table ", family, " ", name, "\n"),
                           strCat("delete nftables table ", family, " ", name));
  if (absl::IsNotFound(status)) return absl::OkStatus();
  return status;
}

}  // namespace berth::proxy
