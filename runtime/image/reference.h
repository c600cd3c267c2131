// Image references ("busybox", "docker.io/library/busybox:1.36",
// "host:5000/repo@sha256:…") parsed and normalised the way kubelet and containerd do,
// following the docker/distribution reference grammar (distribution/reference
// `reference.go`, `normalize.go`) and the OCI image-spec digest rules
// (opencontainers/image-spec descriptor.md "Digests").
//
//   reference  := name [ ":" tag ] [ "@" digest ]
//   name       := [ domain "/" ] path-component ( "/" path-component )*
//   domain     := host [ ":" port ]   host = dns-name | "[" ipv6 "]"
//   path-comp  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//   tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//   digest     := algorithm ":" hex     (sha256: 64 hex, sha512: 128 hex, lowercase)
//
// Normalisation: the first "/"-separated component is a domain only when it contains
// "." or ":", is "localhost", or has an uppercase letter; otherwise the domain is
// docker.io. "index.docker.io" becomes "docker.io", a one-component docker.io path
// gets "library/", and a reference with neither tag nor digest gets ":latest".
// A reference with both a tag and a digest keeps both; the digest is what is pulled.
//
// Thread-safety: value types and pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace berth::image {

// The domain of unqualified references ("busybox" -> "docker.io/library/busybox").
inline constexpr char kDefaultDomain[] = "docker.io";
// The legacy spelling of kDefaultDomain, normalised away.
inline constexpr char kLegacyDefaultDomain[] = "index.docker.io";
// The host that serves the registry API for docker.io.
inline constexpr char kDockerHubRegistryHost[] = "registry-1.docker.io";
// The tag given to references that have neither tag nor digest.
inline constexpr char kDefaultTag[] = "latest";

// A normalised image reference. Built by parseReference(); every field is already
// validated and normalised there.
struct Reference {
  std::string domain;  // "docker.io", "quay.io", "host:5000", "[::1]:5000", "localhost"
  std::string path;    // "library/busybox", "user/app"
  std::string tag;     // "latest", "1.36"; empty when only a digest was given
  std::string digest;  // "sha256:<64 hex>"; empty when none was given

  // "<domain>/<path>", e.g. "docker.io/library/busybox".
  std::string fullName() const;
  // The normalised reference: fullName()[":" tag]["@" digest],
  // e.g. "docker.io/library/busybox:latest".
  std::string string() const;
  // The short form Docker prints: "busybox:latest", "user/app:1.0",
  // "quay.io/x/y@sha256:…" (docker.io and a "library/" prefix are dropped).
  std::string familiarName() const;
  // The host[:port] that serves the registry HTTP API for this reference's domain:
  // docker.io -> registry-1.docker.io; any other domain is returned as is.
  std::string registryHost() const;
  // What to put after /v2/<path>/manifests/: the digest when there is one (it pins
  // the content), else the tag.
  std::string manifestReference() const;

  bool operator==(const Reference&) const = default;
};

// Parses and normalises `text` (surrounding whitespace is not allowed).
// Errors: InvalidArgument `invalid image reference "<text>": <what is wrong>` for an
// empty reference, a bare 64-hex identifier, an uppercase repository, a bad domain,
// path component, tag or digest, or a name longer than 255 characters.
StatusOr<Reference> parseReference(std::string_view text);

// Checks a digest string "<algorithm>:<hex>": sha256 needs 64 and sha512 128
// lowercase hex digits; other syntactically valid algorithms are reported as
// unsupported. Errors: InvalidArgument `digest "<d>": <what is wrong>`.
Status validateDigest(std::string_view digest);

}  // namespace berth::image
